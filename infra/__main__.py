"""``python -m infra``: synthesize the CDK app (what ``cdk synth`` runs)."""

from infra.app import main

main()
