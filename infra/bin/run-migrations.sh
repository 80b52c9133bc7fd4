#!/usr/bin/env bash
# Run the one-shot migrate task (schema to head, then the Kafka topics) with IMAGE, before
# the services roll to it: the stage's migrate task definition is re-registered with the new
# image, run in the private subnets, waited for, and its exit code returned.
#   infra/bin/run-migrations.sh staging 123456789012.dkr.ecr.eu-west-1.amazonaws.com/stride-staging:SHA
# Needs the AWS CLI and jq, and credentials of the stage's deploy role (docs/deploy.md).
set -euo pipefail
stage=${1:?usage: run-migrations.sh STAGE IMAGE}
image=${2:?usage: run-migrations.sh STAGE IMAGE}
cluster="stride-$stage"
family="stride-$stage-migrate"
network="stride-$stage-network"

output() {
  aws cloudformation describe-stacks --stack-name "$network" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

echo "==> $family with $image"
aws ecs describe-task-definition --task-definition "$family" --query taskDefinition \
  | jq --arg image "$image" '
      .containerDefinitions |= map(if .name == "app" then .image = $image else . end)
      | {family, taskRoleArn, executionRoleArn, networkMode, containerDefinitions, volumes,
         requiresCompatibilities, cpu, memory, runtimePlatform}' >"${TMPDIR:-/tmp}/migrate-task.json"
revision=$(aws ecs register-task-definition --cli-input-json "file://${TMPDIR:-/tmp}/migrate-task.json" \
  --query taskDefinition.taskDefinitionArn --output text)

subnets=$(output TaskSubnets)
security_group=$(output TaskSecurityGroup)
task=$(aws ecs run-task --cluster "$cluster" --launch-type FARGATE --task-definition "$revision" \
  --network-configuration "awsvpcConfiguration={subnets=[$subnets],securityGroups=[$security_group],assignPublicIp=DISABLED}" \
  --started-by "run-migrations" --query 'tasks[0].taskArn' --output text)
echo "    task $task"
aws ecs wait tasks-stopped --cluster "$cluster" --tasks "$task"
code=$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task" \
  --query 'tasks[0].containers[?name==`app`].exitCode | [0]' --output text)
if [ "$code" != "0" ]; then
  echo "migrate task exited with $code: see the log group /stride/$stage (stream migrate/...)" >&2
  exit 1
fi
echo "    migrations and topics done"
