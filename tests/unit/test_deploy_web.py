"""`make deploy-web` cannot run here (no AWS): what it would upload, and the config.json it would write, are checked
from the script's pure parts."""

import importlib.util
import json

from local.stack.template import REPO_ROOT

_spec = importlib.util.spec_from_file_location("deploy_web", REPO_ROOT / "scripts" / "deploy_web.py")
assert _spec is not None and _spec.loader is not None
deploy_web = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deploy_web)

CONSOLE = "https://d111111abcdef8.cloudfront.net"
OUTPUTS = {
    "ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/dev",
    "ConsoleUrl": CONSOLE,
    "ConsoleBucketName": "xero-sync-dev-consolebucket-1",
    "ConsoleDistributionId": "E2EXAMPLE",
}
PARAMETERS = {
    "JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
    "JwtAudience": "client-one, client-two",
    "PracticeClaim": "custom:practice",
    "FrontendOrigin": CONSOLE,
    "XeroRedirectUri": f"{CONSOLE}/xero/callback",
}


def test_the_config_names_the_api_and_the_identity_provider():
    config = deploy_web.console_config(OUTPUTS, PARAMETERS)
    assert config == {
        "apiUrl": OUTPUTS["ApiUrl"],
        "signIn": {
            "mode": "oidc",
            "issuer": PARAMETERS["JwtIssuer"],
            "clientId": "client-one",
            "practiceClaim": "custom:practice",
        },
    }
    assert "tokensUrl" not in json.dumps(config)  # local sign-in exists only on the local stack


def test_the_plan_uploads_every_page_and_module_with_its_type_and_the_stacks_config():
    plan = {u.key: u for u in deploy_web.upload_plan(deploy_web.console_config(OUTPUTS, PARAMETERS))}
    assert plan["index.html"].content_type == "text/html; charset=utf-8"
    assert plan["index.html"].cache_control == "no-cache"
    assert plan["xero/callback"].path == plan["xero-callback.html"].path  # the clean path Xero sends users back to
    assert plan["js/app.js"].content_type == "text/javascript; charset=utf-8"
    assert plan["js/screens/client-list.js"].content_type.startswith("text/javascript")
    assert plan["css/console.css"].content_type == "text/css; charset=utf-8"
    config = plan["config.json"]
    assert (config.path, config.content_type, config.cache_control) == (None, "application/json", "no-cache")
    assert json.loads(config.body)["apiUrl"] == OUTPUTS["ApiUrl"]


def test_a_stack_whose_cors_origin_is_not_the_console_is_refused():
    assert deploy_web.check_origin(OUTPUTS, PARAMETERS) == []
    wrong = {**PARAMETERS, "FrontendOrigin": "https://app.example.com"}
    assert any("FrontendOrigin" in p for p in deploy_web.check_origin(OUTPUTS, wrong))
    assert deploy_web.check_origin({"ApiUrl": OUTPUTS["ApiUrl"]}, PARAMETERS) == [
        "the stack has no ConsoleUrl output: deploy it with ConsoleHosting=on"
    ]
