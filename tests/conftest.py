"""Every test tier runs the code with the environment a deployed function gets: template.yaml's, resolved with
local names. This runs before any test module imports xero_sync (its models read table names at import)."""

import os

from local.template import Template

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
)
for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
    os.environ.pop(variable, None)

TEMPLATE = Template()
FUNCTION_ENVIRONMENT = TEMPLATE.functions(TEMPLATE.named_resources())["ClientsFunction"].environment
os.environ.update(FUNCTION_ENVIRONMENT)
