"""One Logger, Metrics and Tracer for the whole package (configured by the POWERTOOLS_* environment)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
# Only the libraries the product calls through (the AWS SDK, PynamoDB's included, and requests for Xero): patching all
# that X-Ray supports would import each of them at every cold start.
tracer = Tracer(patch_modules=("botocore", "requests"))
