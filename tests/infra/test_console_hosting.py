"""The practice console's hosting (template.yaml, ConsoleHosting): a private, encrypted, TLS-only bucket read by
CloudFront alone, a distribution that serves HTTPS only with strict security headers, and nothing of it at all
when the parameter is off (the default)."""

from typing import Any

import pytest

from local.stack.console_server import CONTENT_SECURITY_POLICY
from local.stack.template import Template
from tests.conftest import TEMPLATE

CONSOLE_TYPES = {
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::ResponseHeadersPolicy",
}


@pytest.fixture(scope="module")
def hosted() -> Template:
    return Template(parameters={"ConsoleHosting": "on"})


def condition_holds(template: Template, name: str) -> bool:
    """A condition of the translated template, evaluated with its parameters as CloudFormation would."""

    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                return template.parameter_values[argument]
            if key == "Condition":
                return evaluate(template.cfn["Conditions"][argument])
            if key == "Fn::Equals":
                left, right = (evaluate(item) for item in argument)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not evaluate(argument[0])
            if key == "Fn::And":
                return all(evaluate(item) for item in argument)
            if key == "Fn::Or":
                return any(evaluate(item) for item in argument)
        return node

    return bool(evaluate(template.cfn["Conditions"][name]))


def created(template: Template) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation would create: those without a condition or whose condition holds."""
    return {
        name: resource
        for name, resource in template.resources.items()
        if "Condition" not in resource or condition_holds(template, resource["Condition"])
    }


def outputs(template: Template) -> set[str]:
    return {
        name
        for name, output in template.cfn["Outputs"].items()
        if "Condition" not in output or condition_holds(template, output["Condition"])
    }


def one(template: Template, resource_type: str) -> dict[str, Any]:
    (resource,) = (r for r in created(template).values() if r["Type"] == resource_type)
    return resource["Properties"]


def test_nothing_of_the_console_is_created_when_hosting_is_off():
    assert TEMPLATE.parameter_values["ConsoleHosting"] == "off"  # the default
    assert not [name for name, r in created(TEMPLATE).items() if r["Type"] in CONSOLE_TYPES]
    assert not {name for name in outputs(TEMPLATE) if name.startswith("Console")}


def test_hosting_on_creates_the_bucket_the_distribution_and_their_outputs(hosted):
    types = {r["Type"] for r in created(hosted).values()}
    assert types >= CONSOLE_TYPES
    assert {"ConsoleUrl", "ConsoleBucketName", "ConsoleDistributionId"} <= outputs(hosted)


def test_the_bucket_is_private_encrypted_and_owned(hosted):
    bucket = one(hosted, "AWS::S3::Bucket")
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]  # no ACLs at all
    assert "WebsiteConfiguration" not in bucket  # never a public website endpoint


def test_only_cloudfront_reads_the_bucket_and_only_over_tls(hosted):
    statements = one(hosted, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and s["Action"] == "s3:*" for s in denies)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"Service": "cloudfront.amazonaws.com"}]
    (allow,) = allows
    assert allow["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in allow["Condition"]["StringEquals"]  # this distribution, not any CloudFront
    assert "ConsoleDistribution" in str(allow["Condition"])


def test_the_distribution_serves_https_only_through_origin_access_control(hosted):
    config = one(hosted, "AWS::CloudFront::Distribution")["DistributionConfig"]
    behaviours = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
    assert {b["ViewerProtocolPolicy"] for b in behaviours} <= {"redirect-to-https", "https-only"}
    assert all(b["AllowedMethods"] == ["GET", "HEAD"] for b in behaviours)
    assert all(b["ResponseHeadersPolicyId"] == {"Ref": "ConsoleHeadersPolicy"} for b in behaviours)
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not the legacy identity
    access = one(hosted, "AWS::CloudFront::OriginAccessControl")["OriginAccessControlConfig"]
    assert (access["SigningBehavior"], access["SigningProtocol"]) == ("always", "sigv4")


def test_the_security_headers_are_set_and_the_csp_is_strict(hosted):
    headers = one(hosted, "AWS::CloudFront::ResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["ContentTypeOptions"] == {"Override": True}
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert all(value.get("Override") for value in security.values())
    csp = hosted.resolve(security["ContentSecurityPolicy"]["ContentSecurityPolicy"], hosted.named_resources())
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
    assert directives["script-src"] == directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    # the same policy the local console sends (the browser tests run under it), but for the API's URL
    local = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.format(api="API").split(";"))
    assert local.keys() == directives.keys()
    assert {k: v for k, v in local.items() if k != "connect-src"} == {
        k: v for k, v in directives.items() if k != "connect-src"
    }
    assert directives["connect-src"].startswith("'self' https://") and "execute-api" in directives["connect-src"]


def test_cors_allows_exactly_the_consoles_origin():
    cors = TEMPLATE.cors_configuration()
    assert cors is not None
    assert cors["allowOrigins"] == [TEMPLATE.parameter_values["FrontendOrigin"]]
    assert cors.get("allowCredentials", False) is False
    assert "retry-after" in cors["exposeHeaders"]
