"""Stride's AWS deployment as an AWS CDK app (Python): ``python -m infra`` synthesizes it.

One ``cdk.Stage`` per environment (staging, production), each with one stack per concern
(network, data, compute, observability, delivery). Settings per environment come from the
CDK context (``cdk.json`` or ``-c``), never from an account lookup, so ``cdk synth`` runs
offline without AWS credentials. See docs/deploy.md.
"""
