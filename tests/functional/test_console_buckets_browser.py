"""The Buckets page and "code from S3" in headless Chromium (Debian's package, driven by Playwright),
as a user clicks through them: nothing here needs root, so it runs with the functional tests.

Set ``LAMINA_SCREENSHOTS=DIR`` to save a screenshot of a bucket's page there (docs/console/ holds it).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iam_kit import doc, uid, user_keys
from lamina_server import LaminaServer, client
from testzips import make_zip

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (.ci/run installs it)"
)
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
XSS_KEY = "<img src=x onerror=alert(1)>.txt"
LAYER_ZIP = make_zip({"python/greeting.py": "def greet():\n    return 'hello from S3'\n"})
FUNCTION_ZIP = make_zip({"app.py": "def handler(event, context):\n    return 1\n"})
MB = 1024 * 1024
SHOTS = os.environ.get("LAMINA_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser profile; any dialog other than a confirm() fails the test (an alert() would
    be a script run from a key), and confirms are accepted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    alerts: list[str] = []

    def on_dialog(dialog: Any) -> None:
        if dialog.type != "confirm":
            alerts.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()

    pg.on("dialog", on_dialog)
    pg.on("pageerror", lambda exc: alerts.append(f"script error: {exc}"))
    yield pg
    context.close()
    assert alerts == []


def sign_in(page: Any, server: LaminaServer, key: str = "test", secret: str = "test") -> None:
    expect = playwright_api.expect
    page.goto(f"{server.url}/console/#/signin")
    page.fill("#access-key", key)
    page.fill("#secret-key", secret)
    page.click("#signin")
    expect(page.locator("#signout")).to_be_visible()
    # The page signing in leads to, drawn (or refused, for a user who may not list layers): a
    # navigation before that would be drawn over by it.
    expect(page.locator("h1:text-is('Layers'), #error:not([hidden])").first).to_be_visible()


def test_buckets_page_story(server: LaminaServer, page: Any, tmp_path: Path) -> None:
    expect = playwright_api.expect
    s3 = client(server, "s3")
    sign_in(page, server)
    page.click("#nav a[data-section=buckets]")
    expect(page.locator("h1")).to_have_text("Buckets")
    # S3's own words for a bad name and a taken one.
    page.fill("#bucket-name", "Bad_Name")
    page.click("#create-bucket")
    expect(page.locator("#error")).to_have_text("InvalidBucketName: The specified bucket is not valid.")
    client(server, "s3", key="AKIDALICE111", secret="alice-secret").create_bucket(Bucket="taken-by-alice")
    page.fill("#bucket-name", "taken-by-alice")
    page.click("#create-bucket")
    expect(page.locator("#error")).to_contain_text("BucketAlreadyExists: ")
    # Created in another Region: the LocationConstraint is sent, the list shows the Region.
    bucket = uid("browser")
    page.fill("#bucket-name", bucket)
    page.select_option("#bucket-region", "eu-west-1")
    page.click("#create-bucket")
    expect(page.locator("#notice")).to_have_text(f"Created bucket {bucket} in eu-west-1.")
    expect(page.locator("#buckets tr", has_text=bucket)).to_contain_text("eu-west-1")
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"

    # Upload a 48 MB file with a key that is HTML: a progress bar, and the key shown as text.
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        for i in range(48):
            f.write(bytes([i]) * MB)
    page.click(f"#buckets a:text-is('{bucket}')")
    expect(page.locator("#objects")).to_contain_text("This bucket is empty")
    (tmp_path / XSS_KEY).write_bytes(b"<b>not bold</b>")
    page.set_input_files("#upload-files", [str(big), str(tmp_path / XSS_KEY)])
    page.click("#upload")
    expect(page.locator("#upload-status")).to_have_text("Uploaded 2 file(s), 48.0 MB.")
    assert page.locator("#upload-progress").evaluate("el => el.value") == 100
    expect(page.locator("#objects")).to_contain_text(XSS_KEY)
    assert page.locator("main img").count() == 0
    assert page.locator("#objects .object-name", has_text=XSS_KEY).inner_text() == XSS_KEY
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == 48 * MB
    assert s3.get_object(Bucket=bucket, Key=XSS_KEY)["Body"].read() == b"<b>not bold</b>"

    # Folders: the delimiter's common prefixes, opened like directories.
    s3.put_object(Bucket=bucket, Key="docs/readme.md", Body=b"# docs")
    s3.put_object(Bucket=bucket, Key="docs/<svg onload=alert(2)>/x", Body=b"x")
    page.reload()
    page.click("#objects a.object-name:text-is('docs/')")
    expect(page.locator("#crumbs")).to_have_text(f"Buckets / {bucket} / docs")
    expect(page.locator("#objects")).to_contain_text("readme.md")
    expect(page.locator("#objects")).to_contain_text("<svg onload=alert(2)>/")
    if SHOTS:
        page.click(f"#crumbs a:text-is('{bucket}')")
        expect(page.locator("#objects")).to_contain_text("big.bin")
        page.screenshot(path=str(Path(SHOTS) / "buckets.png"), full_page=True)
        page.go_back()
        expect(page.locator("#objects")).to_contain_text("readme.md")

    # Download: saved by the browser, byte for byte.
    with page.expect_download() as got:
        page.locator("#objects tr", has_text="readme.md").locator("button.download").click()
    download = got.value
    assert download.suggested_filename == "readme.md"
    assert Path(download.path()).read_bytes() == b"# docs"

    # Delete the folder (everything under it), then what the bucket holds.
    page.locator("#objects tr", has_text="<svg onload").locator("input.pick").check()
    page.click("#delete-selected")
    expect(page.locator("#notice")).to_have_text("Deleted 1 object(s).")
    page.click(f"#crumbs a:text-is('{bucket}')")
    page.click("#delete-bucket")
    expect(page.locator("#error")).to_have_text("BucketNotEmpty: The bucket you tried to delete is not empty")
    page.locator("#objects tr", has_text=XSS_KEY).locator("input.pick").check()
    page.click("#delete-selected")
    expect(page.locator("#notice")).to_have_text("Deleted 1 object(s).")
    assert "Contents" in s3.list_objects_v2(Bucket=bucket)  # big.bin and docs/readme.md are left
    page.click("#empty-bucket")
    expect(page.locator("#notice")).to_have_text(f"Emptied {bucket}: 2 object(s) deleted.")
    page.click("#delete-bucket")
    expect(page.locator("#notice")).to_have_text(f"Deleted bucket {bucket}.")
    expect(page.locator("#buckets")).not_to_contain_text(bucket)


def test_iam_denied_user_cannot_download_or_upload_through_the_page(
    server: LaminaServer, page: Any, tmp_path: Path
) -> None:
    expect = playwright_api.expect
    s3 = client(server, "s3")
    bucket = uid("guarded")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="payroll.csv", Body=b"a,b\n")
    _, key, secret = user_keys(
        client(server, "iam"),
        inline=doc(
            {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:ListBucket"], "Resource": "*"},
        ),
    )
    sign_in(page, server, key, secret)
    page.goto(f"{server.url}/console/#/buckets/{bucket}")
    expect(page.locator("#objects")).to_contain_text("payroll.csv")
    page.locator("#objects tr", has_text="payroll.csv").locator("button.download").click()
    expect(page.locator("#error")).to_contain_text("AccessDenied: User: ")
    expect(page.locator("#error")).to_contain_text("s3:GetObject")
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"z" * (4 * MB))
    page.set_input_files("#upload-files", str(upload))
    page.click("#upload")
    expect(page.locator("#error")).to_contain_text("AccessDenied: User: ")
    expect(page.locator("#error")).to_contain_text("s3:PutObject")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["payroll.csv"]


def test_code_forms_offer_a_bucket_and_key(server: LaminaServer, page: Any) -> None:
    """The layer and function forms send Content.S3Bucket/S3Key and Code.S3Bucket/S3Key (whatever
    the API then answers: that is the next test's business)."""
    expect = playwright_api.expect
    s3 = client(server, "s3")
    bucket = uid("code")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="layers/greeting.zip", Body=LAYER_ZIP)
    s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"not code")
    sign_in(page, server)
    page.goto(f"{server.url}/console/#/layers/new")
    page.fill("#layer-name", "from-s3")
    page.select_option("#layer-code-source", "s3")
    expect(page.locator(f"#layer-s3-bucket option[value='{bucket}']")).to_have_count(1)
    page.click("#publish-layer")  # nothing chosen: refused before anything is sent
    expect(page.locator(".field-error").first).to_have_text("Choose a bucket.")
    page.select_option("#layer-s3-bucket", bucket)
    # The bucket's .zip objects are offered (and the only one is filled in).
    expect(page.locator("#layer-s3-keys option")).to_have_count(1)
    expect(page.locator("#layer-s3-key")).to_have_value("layers/greeting.zip")
    with page.expect_request(
        lambda r: r.url.endswith("/console/api/call") and "PublishLayerVersion" in (r.post_data or "")
    ) as sent:
        page.click("#publish-layer")
    assert json.loads(sent.value.post_data)["params"]["Content"] == {
        "S3Bucket": bucket,
        "S3Key": "layers/greeting.zip",
    }
    # Its outcome on screen (the layer's page, or the API's refusal) before going on.
    expect(page.locator("h1:text-is('Layer from-s3'), #error:not([hidden])").first).to_be_visible()
    page.goto(f"{server.url}/console/#/functions/new")
    page.fill("#function-name", "from-s3-form")
    page.select_option("#function-role", ROLE)
    page.select_option("#function-code-source", "s3")
    page.select_option("#function-s3-bucket", bucket)
    page.fill("#function-s3-key", "app.zip")
    with page.expect_request(
        lambda r: r.url.endswith("/console/api/call") and "CreateFunction" in (r.post_data or "")
    ) as sent:
        page.click("#create-function-submit")
    assert json.loads(sent.value.post_data)["params"]["Code"] == {"S3Bucket": bucket, "S3Key": "app.zip"}


def test_code_from_s3_publishes_a_layer_and_creates_a_function(server: LaminaServer, page: Any) -> None:
    """Needs the API's Lambda-from-S3 support (PublishLayerVersion Content.S3Bucket, CreateFunction
    Code.S3Bucket)."""
    expect = playwright_api.expect
    s3 = client(server, "s3")
    bucket = uid("deploy")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="greeting.zip", Body=LAYER_ZIP)
    s3.put_object(Bucket=bucket, Key="fn/app.zip", Body=FUNCTION_ZIP)
    lam = client(server)
    sign_in(page, server)
    page.goto(f"{server.url}/console/#/layers/new")
    page.fill("#layer-name", "greeting-from-s3")
    page.select_option("#layer-code-source", "s3")
    page.select_option("#layer-s3-bucket", bucket)
    page.fill("#layer-s3-key", "greeting.zip")
    page.click("#publish-layer")
    expect(page.locator("#notice")).to_contain_text(
        "arn:aws:lambda:us-east-1:000000000000:layer:greeting-from-s3:1"
    )
    layer = lam.get_layer_version(LayerName="greeting-from-s3", VersionNumber=1)
    assert layer["Content"]["CodeSize"] == len(LAYER_ZIP)
    page.goto(f"{server.url}/console/#/functions/new")
    page.fill("#function-name", "code-from-s3")
    page.select_option("#function-role", ROLE)
    page.select_option("#function-code-source", "s3")
    page.select_option("#function-s3-bucket", bucket)
    page.fill("#function-s3-key", "fn/app.zip")
    page.click("#create-function-submit")
    expect(page.locator("#function-state")).to_contain_text("Active")
    assert lam.get_function(FunctionName="code-from-s3")["Configuration"]["CodeSize"] == len(FUNCTION_ZIP)


def test_a_file_over_the_put_limit_goes_up_in_parts(server: LaminaServer, page: Any, tmp_path: Path) -> None:
    """The page's multipart path, with its limits lowered (tests cannot send 5 GB): 12 MB over a
    6 MB limit, in 5 MB parts."""
    expect = playwright_api.expect
    s3 = client(server, "s3")
    bucket = uid("parts")
    s3.create_bucket(Bucket=bucket)
    sign_in(page, server)
    page.evaluate(f"localStorage.setItem('lamina.multipartAbove', '{6 * MB}')")
    page.evaluate(f"localStorage.setItem('lamina.partSize', '{5 * MB}')")
    page.goto(f"{server.url}/console/#/buckets/{bucket}")
    page.reload()
    data = bytes(range(256)) * (12 * MB // 256)
    (tmp_path / "parts.bin").write_bytes(data)
    page.set_input_files("#upload-files", str(tmp_path / "parts.bin"))
    page.click("#upload")
    expect(page.locator("#upload-status")).to_have_text("Uploaded 1 file(s), 12.0 MB.")
    head = s3.head_object(Bucket=bucket, Key="parts.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')
    assert s3.get_object(Bucket=bucket, Key="parts.bin")["Body"].read() == data
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
