"""`make deploy-web`: uploads the practice console (web/) to the stack's console bucket, with the config.json the
deployed console reads (the API's URL, how users sign in), then invalidates the distribution's cache.

Needs a stack deployed with ConsoleHosting=on and AWS credentials; it refuses, saying why, when the stack's
FrontendOrigin is not the console's origin (CORS would refuse every call) or XeroRedirectUri not its callback page.
"""

import argparse
import json
import mimetypes
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
# Pages the console links to by a clean path: uploaded again under that key (CloudFront serves keys, no rewrites).
CLEAN_PATHS = {"xero-callback.html": "xero/callback"}
# HTML and config.json are read fresh on every visit (a new deploy shows at once); scripts and styles are not
# fingerprinted, so they are cached briefly only.
NO_CACHE = "no-cache"
SHORT_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class Upload:
    key: str
    path: Path | None  # None: the body is `body`
    content_type: str
    cache_control: str
    body: bytes = b""


def console_config(outputs: dict[str, str], parameters: dict[str, str]) -> dict[str, Any]:
    """What the deployed console reads at /config.json: the API, and the identity provider that signs users in
    (docs/console.md: the JWT's issuer and audience are the API's JwtIssuer and JwtAudience)."""
    return {
        "apiUrl": outputs["ApiUrl"].rstrip("/"),
        "signIn": {
            "mode": "oidc",
            "issuer": parameters["JwtIssuer"],
            "clientId": parameters["JwtAudience"].split(",")[0].strip(),
            "practiceClaim": parameters.get("PracticeClaim") or "practice_id",
        },
    }


def check_origin(outputs: dict[str, str], parameters: dict[str, str]) -> list[str]:
    """Why the stack cannot serve this console yet (empty when it can)."""
    console = outputs.get("ConsoleUrl")
    if not console:
        return ["the stack has no ConsoleUrl output: deploy it with ConsoleHosting=on"]
    problems = []
    if parameters.get("FrontendOrigin") != console:
        problems.append(f"FrontendOrigin is {parameters.get('FrontendOrigin')!r}: set it to {console!r}")
    if parameters.get("XeroRedirectUri") != f"{console}/xero/callback":
        problems.append(f"XeroRedirectUri is {parameters.get('XeroRedirectUri')!r}: set it to {console}/xero/callback")
    return problems


def upload_plan(config: dict[str, Any], root: Path = WEB_ROOT) -> list[Upload]:
    plan = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative == "config.json":
            continue  # the stack's, written below
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix in (".js", ".mjs"):
            content_type = "text/javascript"  # module scripts need a JavaScript type (nosniff is on)
        cache = NO_CACHE if path.suffix == ".html" else SHORT_CACHE
        keys = [relative, *([CLEAN_PATHS[relative]] if relative in CLEAN_PATHS else [])]
        plan += [
            Upload(
                key, path, f"{content_type}; charset=utf-8" if content_type.startswith("text/") else content_type, cache
            )
            for key in keys
        ]
    body = json.dumps(config, indent=2).encode()
    plan.append(Upload("config.json", None, "application/json", NO_CACHE, body))
    return plan


def stack_description(cloudformation: Any, stack: str) -> tuple[dict[str, str], dict[str, str]]:
    (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    parameters = {
        p["ParameterKey"]: p.get("ResolvedValue", p["ParameterValue"]) for p in description.get("Parameters", [])
    }
    return outputs, parameters


def deploy(stack: str, region: str | None) -> int:
    import boto3

    session = boto3.Session(region_name=region)
    outputs, parameters = stack_description(session.client("cloudformation"), stack)
    problems = check_origin(outputs, parameters)
    if problems:
        print(f"{stack} cannot serve the console yet:\n  " + "\n  ".join(problems), file=sys.stderr)
        print(
            "redeploy with those parameters (sam deploy --parameter-overrides ...), then run this again",
            file=sys.stderr,
        )
        return 1
    s3 = session.client("s3")
    bucket = outputs["ConsoleBucketName"]
    for upload in upload_plan(console_config(outputs, parameters)):
        body = upload.path.read_bytes() if upload.path is not None else upload.body
        s3.put_object(
            Bucket=bucket, Key=upload.key, Body=body, ContentType=upload.content_type, CacheControl=upload.cache_control
        )
        print(f"  s3://{bucket}/{upload.key}")
    session.client("cloudfront").create_invalidation(
        DistributionId=outputs["ConsoleDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time())},
    )
    print(f"console: {outputs['ConsoleUrl']}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="xero-sync-dev")
    parser.add_argument("--region", default=None)
    args = parser.parse_args()
    return deploy(args.stack, args.region)


if __name__ == "__main__":
    sys.exit(main())
