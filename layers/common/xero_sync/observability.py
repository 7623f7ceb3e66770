"""One Logger, Metrics and Tracer for the whole package (configured by the POWERTOOLS_* environment)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
tracer = Tracer()
