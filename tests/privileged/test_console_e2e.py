"""The console end to end in headless Chromium (Debian's package, driven by Playwright): sign in, create a
layer by upload, create a function, add the layer, test-invoke it, see a VPC function's shared interface.

Set ``LAMINA_SCREENSHOTS=DIR`` to save screenshots of the main pages there (docs/console/ holds them).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip

pytestmark = pytest.mark.privileged

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (.ci/run installs it)"
)
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)

VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
LAYER_ZIP = make_zip({"python/greeting.py": "def greet(name):\n    return f'hello {name} from a layer'\n"})
FUNCTION_ZIP = make_zip(
    {
        "app.py": "import greeting\n\ndef handler(event, context):\n"
        "    print('handling', event)\n    return {'message': greeting.greet(event['name'])}\n"
    }
)
SHOTS = os.environ.get("LAMINA_SCREENSHOTS")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina-console") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def vpc_function(server: LaminaServer) -> dict[str, str]:
    """A VPC function made through the API: the console must show its shared interface."""
    client(server, "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
    ec2 = client(server, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/28", AvailabilityZone="us-east-1a")["Subnet"][
        "SubnetId"
    ]
    group = ec2.create_security_group(VpcId=vpc, GroupName="fn-group", Description="function")["GroupId"]
    lam = client(server)
    lam.create_function(
        FunctionName="in-vpc",
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})},
        VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName="in-vpc", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return {"vpc": vpc, "subnet": subnet, "group": group}


@pytest.fixture(scope="module")
def page(server: LaminaServer) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        yield pg
        context.close()
        browser.close()


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_console_story(server: LaminaServer, page: Any, vpc_function: dict[str, str], tmp_path: Path) -> None:
    expect = playwright_api.expect
    page.goto(f"{server.url}/console/")
    # A wrong secret: the AWS message, no stack trace.
    page.fill("#access-key", "test")
    page.fill("#secret-key", "wrong")
    page.click("#signin")
    expect(page.locator("#error")).to_contain_text(
        "InvalidClientTokenId: The access key ID or secret access key is not valid."
    )
    shot(page, "signin")
    page.fill("#secret-key", "test")
    page.click("#signin")
    expect(page.locator("#who")).to_have_text("test @ 000000000000")

    # Create a layer by uploading a zip.
    (tmp_path / "greeting-layer.zip").write_bytes(LAYER_ZIP)
    page.click("#create-layer")
    page.click("#publish-layer")  # empty form: validated before anything is sent
    expect(page.locator(".field-error").first).to_be_visible()
    page.fill("#layer-name", "greeting")
    page.fill("#layer-description", "says hello")
    page.set_input_files("#layer-zip", str(tmp_path / "greeting-layer.zip"))
    page.check("input[name=runtime][value='python3.12']")
    page.check("input[name=arch][value='x86_64']")
    page.click("#publish-layer")
    expect(page.locator("#notice")).to_contain_text("arn:aws:lambda:us-east-1:000000000000:layer:greeting:1")
    expect(page.locator("main table")).to_contain_text("says hello")
    page.click("button.check-layer")  # lamina layer check on each compatible runtime
    expect(page.locator("#layer-check")).to_contain_text(
        "python3.12 x86_64 (Amazon Linux 2023: glibc 2.34, GLIBCXX_3.4.29, CXXABI_1.3.13): loads"
    )
    page.goto(f"{server.url}/console/#/layers")
    expect(page.locator("main table")).to_contain_text("greeting")
    shot(page, "layers")

    # Create a function from a zip.
    (tmp_path / "function.zip").write_bytes(FUNCTION_ZIP)
    page.goto(f"{server.url}/console/#/functions")
    page.click("#create-function")
    page.fill("#function-name", "hello-console")
    page.select_option("#function-runtime", "python3.12")
    page.select_option("#function-role", ROLE)
    page.set_input_files("#function-zip", str(tmp_path / "function.zip"))
    page.click("#create-function-submit")
    expect(page.locator("#function-state")).to_contain_text("Active")

    # Add the layer (your layers -> greeting -> version 1).
    page.select_option("#layer-choice", label="greeting")
    expect(page.locator("#layer-version option")).to_have_count(1)
    page.click("#add-layer")
    expect(page.locator("#function-layers")).to_contain_text(
        "arn:aws:lambda:us-east-1:000000000000:layer:greeting:1"
    )
    shot(page, "function-configuration")

    # Test it: the function's output, durations and the log tail.
    page.click("#tab-test")
    page.fill("#test-event", "{not json")
    page.click("#test-invoke")
    expect(page.locator(".field-error")).to_contain_text("valid JSON")
    page.fill("#test-event", '{"name": "lamina"}')
    page.click("#test-invoke")
    expect(page.locator("#r-payload")).to_contain_text('{"message": "hello lamina from a layer"}')
    expect(page.locator("#r-billed")).to_contain_text("ms")
    expect(page.locator("#r-memory")).to_contain_text("MB")
    expect(page.locator("#r-init")).to_contain_text("ms")
    expect(page.locator("#r-log")).to_contain_text("handling {'name': 'lamina'}")
    shot(page, "function-test")

    page.click("#tab-logs")
    expect(page.locator("#log-group")).to_have_text("/aws/lambda/hello-console")
    expect(page.locator("#logs")).to_contain_text("REPORT RequestId")

    # The VPC function's shared (Hyperplane) interface.
    page.goto(f"{server.url}/console/#/vpc")
    row = page.locator("#enis tr", has_text=vpc_function["subnet"])
    expect(row).to_contain_text("in-vpc")
    expect(row).to_contain_text(vpc_function["group"])
    expect(page.locator(".subnet-free").first).to_contain_text("free")
    shot(page, "vpc")

    # The VPC tab of a function shows its VPC and state.
    page.goto(f"{server.url}/console/#/functions/in-vpc")
    expect(page.locator("#vpc-config")).to_contain_text(vpc_function["vpc"])
    expect(page.locator("#vpc-config")).to_contain_text("Active")


def test_layer_permissions_and_environment(server: LaminaServer, page: Any) -> None:
    expect = playwright_api.expect
    # Share version 1 publicly, then take it back.
    page.goto(f"{server.url}/console/#/layers/greeting/1")
    page.fill("#statement-id", "everyone")
    page.fill("#principal", "everybody")
    page.click("#add-permission")
    expect(page.locator(".field-error")).to_contain_text("An account ID (12 digits)")
    page.fill("#principal", "*")
    page.click("#add-permission")
    expect(page.locator("main table")).to_contain_text("everyone")
    policy = client(server).get_layer_version_policy(LayerName="greeting", VersionNumber=1)["Policy"]
    assert '"Principal":"*"' in policy.replace(" ", "")
    page.locator("main table button", has_text="Remove").click()
    expect(page.locator("main")).to_contain_text("Only this account can use this version.")
    # Environment variables: validated in the page, saved through UpdateFunctionConfiguration.
    page.goto(f"{server.url}/console/#/functions/hello-console")
    page.locator("button", has_text="Add variable").click()
    page.locator(".env-key").last.fill("1BAD")
    page.click("#save-env")
    expect(page.locator("#env-rows .field-error")).to_be_visible()
    page.locator(".env-key").last.fill("GREETING")
    page.locator(".env-value").last.fill("hi")
    page.click("#save-env")
    expect(page.locator("#notice")).to_contain_text("Environment saved.")
    config = client(server).get_function_configuration(FunctionName="hello-console")
    assert config["Environment"]["Variables"] == {"GREETING": "hi"}
    # An API error is shown as AWS words it: a sixth layer is refused before sending, a bad ARN by AWS.
    page.select_option("#layer-source", "arn")
    page.fill("#layer-arn", "arn:aws:lambda:us-east-1:000000000000:layer:missing:9")
    page.click("#add-layer")
    expect(page.locator("#error")).to_contain_text(
        "Layer version arn:aws:lambda:us-east-1:000000000000:layer:missing:9 does not exist."
    )


def test_other_accounts_see_nothing(server: LaminaServer, page: Any) -> None:
    expect = playwright_api.expect
    page.goto(f"{server.url}/console/")
    page.click("#signout")
    expect(page.locator("#access-key")).to_be_visible()
    page.goto(f"{server.url}/console/#/layers")
    expect(page.locator("#access-key")).to_be_visible()


def test_versions_aliases_tags_concurrency_and_url(server: LaminaServer, page: Any) -> None:
    expect = playwright_api.expect
    lam = client(server)
    page.goto(f"{server.url}/console/")
    if page.locator("#access-key").is_visible():  # the story's session ended with its sign-out
        page.fill("#access-key", "test")
        page.fill("#secret-key", "test")
        page.click("#signin")
        expect(page.locator("#signout")).to_be_visible()
    page.goto(f"{server.url}/console/#/functions/hello-console/versions")
    page.fill("#version-description", "first")
    page.click("#publish-version")
    expect(page.locator("#notice")).to_contain_text("Published version 1.")
    page.fill("#alias-name", "123")  # only digits: refused in the page
    page.click("#create-alias")
    expect(page.locator("#aliases .field-error")).to_be_visible()
    page.fill("#alias-name", "live")
    page.select_option("#alias-version", "1")
    page.click("#create-alias")
    expect(page.locator("#alias-live")).to_contain_text("100% 1")
    assert lam.get_alias(FunctionName="hello-console", Name="live")["FunctionVersion"] == "1"
    page.goto(f"{server.url}/console/#/functions/hello-console/settings")
    page.fill("#tag-key", "team")
    page.fill("#tag-value", "blue")
    page.click("#add-tag")
    expect(page.locator("#tags")).to_contain_text("team = blue")
    page.fill("#reserved-concurrency", "5")
    page.click("#save-concurrency")
    expect(page.locator("#concurrency")).to_contain_text("5 reserved.")
    page.fill("#provisioned-qualifier", "live")
    page.fill("#provisioned-count", "1")
    page.click("#save-provisioned")
    expect(page.locator("#provisioned")).to_contain_text("live")
    deadline = time.monotonic() + 60
    while (
        lam.get_provisioned_concurrency_config(FunctionName="hello-console", Qualifier="live")["Status"]
        != "READY"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    page.reload()
    expect(page.locator("#provisioned")).to_contain_text("1/1 ready, READY")
    page.locator("#provisioned button.danger").click()
    expect(page.locator("#notice")).to_contain_text("Provisioned concurrency removed.")
    assert (
        lam.list_provisioned_concurrency_configs(FunctionName="hello-console")[
            "ProvisionedConcurrencyConfigs"
        ]
        == []
    )
    page.select_option("#url-auth", "AWS_IAM")
    page.click("#create-url")
    expect(page.locator("#url-link")).to_contain_text(".lambda-url.us-east-1.localhost")
    arn = lam.get_function_configuration(FunctionName="hello-console")["FunctionArn"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "blue"}
    assert lam.get_function_concurrency(FunctionName="hello-console")["ReservedConcurrentExecutions"] == 5
    assert lam.get_function_url_config(FunctionName="hello-console")["AuthType"] == "AWS_IAM"
    # LogFormat JSON: the test tab reads the figures from the platform.report event.
    lam.update_function_configuration(FunctionName="hello-console", LoggingConfig={"LogFormat": "JSON"})
    lam.get_waiter("function_updated_v2").wait(FunctionName="hello-console", WaiterConfig={"Delay": 0.2})
    page.goto(f"{server.url}/console/#/functions/hello-console/test")
    page.fill("#test-event", '{"name": "json"}')
    page.click("#test-invoke")
    expect(page.locator("#r-log")).to_contain_text('"type":"platform.report"')
    expect(page.locator("#r-billed")).to_contain_text("ms")
    expect(page.locator("#r-memory")).to_contain_text("MB")
    expect(page.locator("#r-init")).to_contain_text("ms")
