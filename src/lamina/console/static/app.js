// lamina console: plain ES module, no build step. Every action is an AWS operation run by the
// server for the signed-in user (POST /console/api/call), with the API's own checks and messages.

const REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1",
  "eu-north-1", "ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ap-south-1", "sa-east-1", "ca-central-1"];
const RUNTIMES = ["python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "provided.al2023", "provided.al2", "provided"];
const LAYER_RUNTIMES = ["python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "provided.al2", "provided.al2023"];
const ARCHS = ["x86_64", "arm64"];
const MAX_ZIP = 50 * 1024 * 1024;

const state = { region: localStorage.getItem("lamina.region") || "us-east-1", account: null };
const $ = (sel) => document.querySelector(sel);
const main = $("#main");

// -- DOM helpers (text only: nothing from the server is parsed as HTML) --------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    // Through the CSSOM: a style attribute is inline style, which the console's CSP refuses.
    else if (k === "style") el.style.cssText = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const table = (heads, rows, empty = "Nothing here yet.") =>
  rows.length ? h("table", {}, h("thead", {}, h("tr", {}, heads.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))) : h("p", { class: "hint" }, empty);
const stateBadge = (s) => h("span", { class: `state ${s || ""}` }, s || "-");
const field = (label, input, hint) => h("label", { class: "field" }, label, input, hint ? h("small", {}, hint) : null);

function showError(err) {
  const box = $("#error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = err.code ? `${err.code}: ${err.message}` : String(err.message || err);
  box.hidden = false;
  window.scrollTo(0, 0);
}
function notice(text) {
  state.noticeAt = Date.now();
  const box = $("#notice");
  box.textContent = text || "";
  box.hidden = !text;
}

// -- talking to the server ----------------------------------------------------------------------
class ApiError extends Error {
  constructor(code, message, status) { super(message); this.code = code; this.status = status; }
}
async function api(action, body = {}) {
  let res;
  try {
    res = await fetch(`/console/api/${action}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Lamina-Console": "1" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError("NetworkError", "The lamina server cannot be reached.");
  }
  let doc = {};
  try { doc = await res.json(); } catch (e) { doc = {}; }
  if (!res.ok) {
    const err = doc.error || { code: `HTTP${res.status}`, message: res.statusText };
    if (res.status === 401 && action !== "signin") { state.account = null; location.hash = "#/signin"; }
    throw new ApiError(err.code, err.message, res.status);
  }
  return doc;
}
const call = async (service, operation, params = {}) =>
  (await api("call", { service, operation, region: state.region, params })).result;
const callIn = async (region, service, operation, params = {}) =>
  (await api("call", { service, operation, region, params })).result;

async function all(service, operation, params, key, tokenIn = "Marker", tokenOut = "NextMarker") {
  const out = [];
  let token;
  for (let i = 0; i < 50; i++) {
    const page = await call(service, operation, token ? { ...params, [tokenIn]: token } : params);
    out.push(...(page[key] || []));
    token = page[tokenOut];
    if (!token) break;
  }
  return out;
}

const b64encode = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
const b64decode = (b64) => new TextDecoder().decode(Uint8Array.from(atob(b64 || ""), (c) => c.charCodeAt(0)));
function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(",", 2)[1] || "");
    r.onerror = () => reject(new ApiError("FileError", `Cannot read ${file.name}.`));
    r.readAsDataURL(file);
  });
}

// -- forms: validation before submit ------------------------------------------------------------
function check(input, ok, message) {
  const holder = input.closest("label") || input.parentElement;
  holder.querySelectorAll(".field-error").forEach((e) => e.remove());
  input.classList.toggle("invalid", !ok);
  if (!ok) holder.append(h("span", { class: "field-error" }, message));
  return ok;
}
const checked = (name, root) => [...root.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
const checks = (name, values, selected = []) =>
  h("div", { class: "checks" }, values.map((v) => h("label", {}, h("input", { type: "checkbox", name, value: v, checked: selected.includes(v) }), ` ${v}`)));
function zipCheck(input) {
  const f = input.files[0];
  if (!check(input, !!f, "Choose a .zip file.")) return false;
  if (!check(input, /\.zip$/i.test(f.name), "The file must be a .zip archive.")) return false;
  return check(input, f.size <= MAX_ZIP, `The zip is ${(f.size / 1048576).toFixed(1)} MB; uploads are limited to 50 MB.`);
}
// Where a layer's or a function's code comes from: a .zip uploaded from this computer (sent in the
// request, up to 50 MB), or an object already in one of the account's buckets (Content.S3Bucket/S3Key
// or Code.S3Bucket/S3Key: Lambda reads it from S3 with the caller's permissions, up to 250 MB unzipped).
function codeSource(id, zipLabel, zipHint) {
  const kind = h("select", { id: `${id}-code-source` }, h("option", { value: "zip" }, "Upload a .zip file"), h("option", { value: "s3" }, "From S3"));
  const zip = h("input", { type: "file", id: `${id}-zip`, accept: ".zip,application/zip" });
  const bucket = h("select", { id: `${id}-s3-bucket` }, h("option", { value: "" }, "choose a bucket"));
  const keys = h("datalist", { id: `${id}-s3-keys` });
  const key = h("input", { type: "text", id: `${id}-s3-key`, list: `${id}-s3-keys`, size: "50", placeholder: "path/to/code.zip", autocomplete: "off" });
  const zipBox = h("div", { class: "row" }, field(zipLabel, zip, zipHint));
  const s3Box = h("div", { class: "row", hidden: true }, field("Bucket", bucket, `a bucket of this account in ${state.region} (Lambda reads code from its own Region)`),
    field("Key", h("span", {}, key, keys), "the object's key: pick one of the bucket's .zip objects or type it"));
  let loaded = false;
  kind.addEventListener("change", async () => {
    zipBox.hidden = kind.value !== "zip";
    s3Box.hidden = kind.value !== "s3";
    if (kind.value !== "s3" || loaded) return;
    loaded = true;
    try {
      const out = await call("s3", "ListBuckets", {});
      const here = (out.Buckets || []).filter((b) => !b.BucketRegion || b.BucketRegion === state.region);
      bucket.append(...here.map((b) => h("option", { value: b.Name }, b.Name)));
    } catch (e) { loaded = false; showError(e); }
  });
  bucket.addEventListener("change", async () => {
    keys.replaceChildren();
    if (!bucket.value) return;
    try {
      const out = await call("s3", "ListObjectsV2", { Bucket: bucket.value, MaxKeys: 1000 });
      const zips = (out.Contents || []).map((o) => o.Key).filter((k) => /\.zip$/i.test(k));
      keys.append(...zips.map((k) => h("option", { value: k })));
      if (zips.length === 1 && !key.value) key.value = zips[0];
    } catch (e) { showError(e); }
  });
  return {
    rows: [h("div", { class: "row" }, field("Code source", kind)), zipBox, s3Box],
    valid: () => kind.value === "zip" ? zipCheck(zip)
      : check(bucket, !!bucket.value, "Choose a bucket.") & check(key, key.value.length >= 1 && key.value.length <= 1024, "Enter the object's key."),
    value: async () => kind.value === "zip" ? { ZipFile: await fileBase64(zip.files[0]) } : { S3Bucket: bucket.value, S3Key: key.value },
  };
}

async function submitting(button, work) {
  showError(null);
  button.disabled = true;
  try { await work(); } catch (e) { showError(e); } finally { button.disabled = false; }
}

// -- pages --------------------------------------------------------------------------------------
function page(title, ...children) {
  main.replaceChildren(h("h1", {}, title), ...children);
}

function signinPage() {
  const key = h("input", { type: "text", id: "access-key", autocomplete: "username", required: true });
  const secret = h("input", { type: "password", id: "secret-key", autocomplete: "current-password", required: true });
  const token = h("input", { type: "password", id: "session-token" });
  const region = h("select", { id: "signin-region" }, REGIONS.map((r) => h("option", { value: r, selected: r === state.region }, r)));
  const button = h("button", { class: "primary", type: "submit", id: "signin" }, "Sign in");
  const form = h("form", { class: "card signin", onsubmit: (ev) => {
    ev.preventDefault();
    if (!check(key, key.value.trim() !== "", "Enter an access key ID.") | !check(secret, secret.value !== "", "Enter the secret access key.")) return;
    submitting(button, async () => {
      const who = await api("signin", { accessKeyId: key.value.trim(), secretAccessKey: secret.value, sessionToken: token.value || undefined });
      setRegion(region.value);
      signedIn(who);
      location.hash = "#/layers";
    });
  } },
  h("h1", {}, "Sign in to lamina"),
  h("p", { class: "hint" }, "Use an access key of one of the server's accounts (the default server accepts test / test), or temporary credentials from STS."),
  field("Access key ID", key), field("Secret access key", secret), field("Session token", token, "only for temporary credentials"),
  field("Region", region), h("div", { class: "row" }, button));
  main.replaceChildren(form);
}

function signedIn(who) {
  state.account = who.account;
  $("#who").textContent = `${who.accessKeyId} @ ${who.account}`;
  for (const id of ["#nav", "#region-box", "#signout"]) $(id).hidden = false;
}
function setRegion(r) {
  state.region = r;
  localStorage.setItem("lamina.region", r);
  $("#region").value = r;
}

// Layers ----------------------------------------------------------------------------------------
async function layersPage() {
  const layers = await all("lambda", "ListLayers", {}, "Layers");
  page("Layers",
    h("div", { class: "row" }, h("a", { class: "button primary", href: "#/layers/new", id: "create-layer" }, "Create layer")),
    table(["Name", "Latest version", "Description", "Compatible runtimes", "Architectures"], layers.map((l) => {
      const v = l.LatestMatchingVersion || {};
      return [h("a", { href: `#/layers/${encodeURIComponent(l.LayerName)}` }, l.LayerName), v.Version,
        v.Description || "", (v.CompatibleRuntimes || []).join(", "), (v.CompatibleArchitectures || []).join(", ")];
    }), "No layers in this region yet: create one by uploading a zip."));
}

function layerForm(name) {
  const nameIn = h("input", { type: "text", id: "layer-name", value: name || "", readonly: !!name });
  const desc = h("input", { type: "text", id: "layer-description" });
  const code = codeSource("layer", "Layer zip", "a .zip with python/ (or python/lib/python3.X/site-packages/); up to 50 MB, larger from S3");
  const license = h("input", { type: "text", id: "layer-license" });
  const button = h("button", { class: "primary", type: "submit", id: "publish-layer" }, name ? "Create version" : "Create");
  const form = h("form", { class: "card", onsubmit: (ev) => {
    ev.preventDefault();
    const okName = check(nameIn, /^[a-zA-Z0-9_-]{1,64}$/.test(nameIn.value), "1 to 64 letters, digits, hyphens or underscores.");
    const okDesc = check(desc, desc.value.length <= 256, "At most 256 characters.");
    if (!okName | !okDesc | !code.valid()) return;
    submitting(button, async () => {
      const params = { LayerName: nameIn.value, Content: await code.value() };
      if (desc.value) params.Description = desc.value;
      if (license.value) params.LicenseInfo = license.value;
      const rt = checked("runtime", form), ar = checked("arch", form);
      if (rt.length) params.CompatibleRuntimes = rt;
      if (ar.length) params.CompatibleArchitectures = ar;
      const out = await call("lambda", "PublishLayerVersion", params);
      notice(`Published ${out.LayerVersionArn}`);
      location.hash = `#/layers/${encodeURIComponent(out.LayerName || nameIn.value)}`;
    });
  } },
  h("div", { class: "row" }, field("Name", nameIn), field("Description", desc, "optional")),
  code.rows,
  h("div", { class: "row" }, field("Compatible runtimes", checks("runtime", LAYER_RUNTIMES), "up to 15")),
  h("div", { class: "row" }, field("Compatible architectures", checks("arch", ARCHS))),
  h("div", { class: "row" }, field("License", license, "optional, e.g. MIT")),
  h("div", { class: "row" }, button, h("a", { href: "#/layers" }, "Cancel")));
  return form;
}

// `lamina layer check` of one version on each runtime (and architecture) it lists as compatible.
function showLayerCheck(box, version, checks) {
  const item = (c) => {
    if (c.skipped) return h("li", {}, `${c.runtime} ${c.arch}: not checked (${c.skipped})`);
    if (c.ok) return h("li", { class: "ok" }, `${c.platform}: loads (${c.elf_files} ELF files, ${c.extensions} extension modules checked)`);
    return h("li", { class: "problems" }, `${c.platform}: ${c.problems.length} problem(s)`,
      h("ul", {}, c.problems.map((p) => h("li", {}, h("code", {}, p.path), `: ${p.detail}`))),
      h("p", { class: "hint" }, `Fix: ${c.fix}`));
  };
  box.replaceChildren(h("h2", {}, `Version ${version} on its compatible runtimes`),
    checks.length ? h("ul", { class: "layer-check" }, checks.map(item))
      : h("p", { class: "hint" }, "This version lists no compatible runtimes to check it against."));
}

async function layerPage(name) {
  const checkBox = h("div", { id: "layer-check" });
  const versions = await all("lambda", "ListLayerVersions", { LayerName: name }, "LayerVersions");
  const rows = versions.map((v) => [v.Version, v.CreatedDate, v.Description || "", (v.CompatibleRuntimes || []).join(", "),
    (v.CompatibleArchitectures || []).join(", "), v.LicenseInfo || "",
    h("span", { class: "row" },
      h("button", { onclick: async (ev) => submitting(ev.target, async () => {
        const got = await call("lambda", "GetLayerVersion", { LayerName: name, VersionNumber: v.Version });
        location.href = got.Content.Location;
      }) }, "Download"),
      h("button", { class: "check-layer", onclick: async (ev) => submitting(ev.target, async () => {
        const out = await api("layer-check", { region: state.region, LayerName: name, VersionNumber: v.Version });
        showLayerCheck(checkBox, v.Version, out.checks);
      }) }, "Check"),
      h("a", { class: "button", href: `#/layers/${encodeURIComponent(name)}/${v.Version}` }, "Permissions"),
      h("button", { class: "danger", onclick: async (ev) => {
        if (!confirm(`Delete version ${v.Version} of ${name}? Functions that use it keep working.`)) return;
        await submitting(ev.target, async () => {
          await call("lambda", "DeleteLayerVersion", { LayerName: name, VersionNumber: v.Version });
          notice(`Deleted version ${v.Version}.`);
          route();
        });
      } }, "Delete"))]);
  page(`Layer ${name}`, h("p", {}, h("a", { href: "#/layers" }, "← Layers")),
    table(["Version", "Created", "Description", "Runtimes", "Architectures", "License", ""], rows, "This layer has no versions left."),
    checkBox,
    h("h2", {}, "Create a new version"), layerForm(name));
}

async function layerPermissionsPage(name, version) {
  let statements = [];
  let revision;
  try {
    const pol = await call("lambda", "GetLayerVersionPolicy", { LayerName: name, VersionNumber: Number(version) });
    statements = JSON.parse(pol.Policy).Statement || [];
    revision = pol.RevisionId;
  } catch (e) {
    if (e.code !== "ResourceNotFoundException") throw e;
  }
  const sid = h("input", { type: "text", id: "statement-id" });
  const principal = h("input", { type: "text", id: "principal", placeholder: "123456789012 or *" });
  const org = h("input", { type: "text", id: "org-id", placeholder: "o-xxxxxxxxxx" });
  const button = h("button", { class: "primary", type: "submit", id: "add-permission" }, "Add permission");
  const form = h("form", { class: "card", onsubmit: (ev) => {
    ev.preventDefault();
    const ok1 = check(sid, /^[a-zA-Z0-9-_]{1,100}$/.test(sid.value), "1 to 100 letters, digits, hyphens or underscores.");
    const ok2 = check(principal, /^(\d{12}|\*|arn:aws:iam::\d{12}:root)$/.test(principal.value), "An account ID (12 digits), its root ARN, or * for everyone.");
    if (!ok1 | !ok2) return;
    submitting(button, async () => {
      const params = { LayerName: name, VersionNumber: Number(version), StatementId: sid.value, Action: "lambda:GetLayerVersion", Principal: principal.value };
      if (org.value) params.OrganizationId = org.value;
      await call("lambda", "AddLayerVersionPermission", params);
      notice(`Shared version ${version} with ${principal.value === "*" ? "everyone" : principal.value}.`);
      route();
    });
  } }, h("div", { class: "row" }, field("Statement ID", sid), field("Principal", principal, "account ID, or * to share publicly"),
    field("Organization ID", org, "optional, with *")), h("div", { class: "row" }, button));
  page(`${name} version ${version}: permissions`, h("p", {}, h("a", { href: `#/layers/${encodeURIComponent(name)}` }, `← ${name}`)),
    table(["Statement", "Principal", "Action", "Condition", ""], statements.map((s) => [s.Sid, JSON.stringify(s.Principal), s.Action,
      s.Condition ? JSON.stringify(s.Condition) : "",
      h("button", { class: "danger", onclick: (ev) => submitting(ev.target, async () => {
        await call("lambda", "RemoveLayerVersionPermission", { LayerName: name, VersionNumber: Number(version), StatementId: s.Sid, RevisionId: revision });
        notice(`Removed ${s.Sid}.`);
        route();
      }) }, "Remove")]), "Only this account can use this version."),
    h("h2", {}, "Share this version"), form);
}

// Functions -------------------------------------------------------------------------------------
async function functionsPage() {
  const fns = await all("lambda", "ListFunctions", {}, "Functions");
  const configs = await Promise.all(fns.map((f) => call("lambda", "GetFunctionConfiguration", { FunctionName: f.FunctionName }).catch(() => f)));
  page("Functions",
    h("div", { class: "row" }, h("a", { class: "button primary", href: "#/functions/new", id: "create-function" }, "Create function")),
    table(["Name", "Runtime", "State", "Last modified", "Layers", "VPC"], configs.map((c) => [
      h("a", { href: `#/functions/${encodeURIComponent(c.FunctionName)}` }, c.FunctionName), c.Runtime || "", stateBadge(c.State),
      c.LastModified, (c.Layers || []).length, c.VpcConfig && c.VpcConfig.VpcId ? c.VpcConfig.VpcId : ""]), "No functions in this region yet."));
}

async function createFunctionPage() {
  let roles = [];
  try { roles = await all("iam", "ListRoles", {}, "Roles"); } catch (e) { showError(e); }
  const name = h("input", { type: "text", id: "function-name" });
  const runtime = h("select", { id: "function-runtime" }, RUNTIMES.map((r) => h("option", { value: r, selected: r === "python3.12" }, r)));
  const handler = h("input", { type: "text", id: "function-handler", value: "app.handler" });
  const memory = h("input", { type: "number", id: "function-memory", value: "128", min: "128", max: "10240" });
  const timeout = h("input", { type: "number", id: "function-timeout", value: "3", min: "1", max: "900" });
  const role = h("select", { id: "function-role" }, roles.map((r) => h("option", { value: r.Arn }, r.RoleName)));
  const code = codeSource("function", "Code (.zip)", "up to 50 MB, larger from S3");
  const button = h("button", { class: "primary", type: "submit", id: "create-function-submit" }, "Create function");
  const form = h("form", { class: "card", onsubmit: (ev) => {
    ev.preventDefault();
    const ok = [
      check(name, /^[a-zA-Z0-9_-]{1,64}$/.test(name.value), "1 to 64 letters, digits, hyphens or underscores."),
      check(handler, /^[^\s]{1,128}$/.test(handler.value), "e.g. app.handler (file app.py, function handler)."),
      check(memory, +memory.value >= 128 && +memory.value <= 10240, "128 to 10240 MB."),
      check(timeout, +timeout.value >= 1 && +timeout.value <= 900, "1 to 900 seconds."),
      check(role, !!role.value, "Create an IAM role that trusts lambda.amazonaws.com first."),
      !!code.valid(),
    ];
    if (ok.includes(false)) return;
    submitting(button, async () => {
      await call("lambda", "CreateFunction", {
        FunctionName: name.value, Runtime: runtime.value, Handler: handler.value, Role: role.value,
        MemorySize: Number(memory.value), Timeout: Number(timeout.value), Code: await code.value(),
      });
      notice(`Created ${name.value}.`);
      location.hash = `#/functions/${encodeURIComponent(name.value)}`;
    });
  } },
  h("div", { class: "row" }, field("Function name", name), field("Runtime", runtime), field("Handler", handler, "module.function")),
  h("div", { class: "row" }, field("Memory (MB)", memory), field("Timeout (s)", timeout), field("Execution role", role, "must trust lambda.amazonaws.com")),
  code.rows,
  h("div", { class: "row" }, button, h("a", { href: "#/functions" }, "Cancel")));
  page("Create function", form);
}

const stateText = (c) => [stateBadge(c.State), c.StateReason ? ` ${c.StateReasonCode}: ${c.StateReason}` : ""];
const updateText = (c) => [stateBadge(c.LastUpdateStatus), c.LastUpdateStatusReason ? ` ${c.LastUpdateStatusReason}` : ""];
const transitional = (c) => c.State === "Pending" || c.LastUpdateStatus === "InProgress";

// While a function is Pending or updating, its state line follows it (nothing else on the page is
// redrawn, so a form being filled in stays as it is).
function watchState(name, c) {
  if (!transitional(c)) return;
  const here = location.hash;
  const tick = async () => {
    const stateEl = $("#function-state");
    if (location.hash !== here || !stateEl) return;
    let now;
    try { now = await call("lambda", "GetFunctionConfiguration", { FunctionName: name }); } catch (e) { return; }
    stateEl.replaceChildren(...stateText(now));
    $("#function-update").replaceChildren(...updateText(now));
    if (transitional(now)) setTimeout(tick, 1000);
  };
  setTimeout(tick, 300);
}

async function functionPage(name, tab = "configuration") {
  const fn = await call("lambda", "GetFunction", { FunctionName: name });
  const c = fn.Configuration;
  const tabs = h("div", { class: "tabs" }, ["configuration", "versions", "settings", "test", "logs"].map((t) =>
    h("a", { href: `#/functions/${encodeURIComponent(name)}/${t}`, class: t === tab ? "active" : "", id: `tab-${t}` }, t[0].toUpperCase() + t.slice(1))));
  const header = h("div", { class: "card" }, h("dl", { class: "kv" },
    h("dt", {}, "State"), h("dd", { id: "function-state" }, ...stateText(c)),
    h("dt", {}, "Last update"), h("dd", { id: "function-update" }, ...updateText(c)),
    h("dt", {}, "ARN"), h("dd", { class: "mono" }, c.FunctionArn),
    h("dt", {}, "Runtime / handler"), h("dd", {}, `${c.Runtime || ""} ${c.Handler || ""}`),
    h("dt", {}, "Role"), h("dd", { class: "mono" }, c.Role)),
    h("div", { class: "row" }, h("button", { class: "danger", onclick: async (ev) => {
      if (!confirm(`Delete function ${name}?`)) return;
      await submitting(ev.target, async () => { await call("lambda", "DeleteFunction", { FunctionName: name }); location.hash = "#/functions"; });
    } }, "Delete function")));
  page(`Function ${name}`, h("p", {}, h("a", { href: "#/functions" }, "← Functions")), header, tabs);
  watchState(name, c);
  if (tab === "versions") main.append(...(await versionsTab(c)));
  else if (tab === "settings") main.append(...(await settingsTab(c)));
  else if (tab === "test") main.append(testTab(name));
  else if (tab === "logs") main.append(await logsTab(name, c));
  else main.append(...(await configurationTab(c)));
}

const update = (name, params) => call("lambda", "UpdateFunctionConfiguration", { FunctionName: name, ...params });

async function configurationTab(c) {
  const name = c.FunctionName;
  // General
  const memory = h("input", { type: "number", id: "config-memory", value: c.MemorySize, min: "128", max: "10240" });
  const timeout = h("input", { type: "number", id: "config-timeout", value: c.Timeout, min: "1", max: "900" });
  const saveGeneral = h("button", { class: "primary", type: "submit", id: "save-general" }, "Save");
  const general = h("form", { class: "card", onsubmit: (ev) => {
    ev.preventDefault();
    if (!check(memory, +memory.value >= 128 && +memory.value <= 10240, "128 to 10240 MB.") |
        !check(timeout, +timeout.value >= 1 && +timeout.value <= 900, "1 to 900 seconds.")) return;
    submitting(saveGeneral, async () => { await update(name, { MemorySize: Number(memory.value), Timeout: Number(timeout.value) }); notice("Saved."); route(); });
  } }, h("h2", {}, "General"), h("div", { class: "row" }, field("Memory (MB)", memory), field("Timeout (s)", timeout), saveGeneral));

  // Layers
  const layers = (c.Layers || []).map((l) => l.Arn);
  const list = h("ol", { class: "layers", id: "function-layers" });
  const saveLayers = async (arns, button) => submitting(button, async () => { await update(name, { Layers: arns }); notice("Layers saved."); route(); });
  layers.forEach((arn, i) => list.append(h("li", {}, h("span", { class: "mono" }, arn), " ",
    h("button", { disabled: i === 0, title: "earlier", onclick: (ev) => { const a = [...layers]; [a[i - 1], a[i]] = [a[i], a[i - 1]]; saveLayers(a, ev.target); } }, "↑"), " ",
    h("button", { disabled: i === layers.length - 1, title: "later", onclick: (ev) => { const a = [...layers]; [a[i + 1], a[i]] = [a[i], a[i + 1]]; saveLayers(a, ev.target); } }, "↓"), " ",
    h("button", { class: "danger", onclick: (ev) => saveLayers(layers.filter((_, j) => j !== i), ev.target) }, "Remove"))));
  const mine = await all("lambda", "ListLayers", {}, "Layers");
  const source = h("select", { id: "layer-source" }, h("option", { value: "mine" }, "Your layers"), h("option", { value: "arn" }, "Specify an ARN"));
  const layerSel = h("select", { id: "layer-choice" }, h("option", { value: "" }, "choose a layer"), mine.map((l) => h("option", { value: l.LayerArn }, l.LayerName)));
  const versionSel = h("select", { id: "layer-version" });
  const arnIn = h("input", { type: "text", id: "layer-arn", size: "60", placeholder: "arn:aws:lambda:region:account:layer:name:version" });
  layerSel.addEventListener("change", async () => {
    versionSel.replaceChildren();
    const l = mine.find((x) => x.LayerArn === layerSel.value);
    if (!l) return;
    const vs = await all("lambda", "ListLayerVersions", { LayerName: l.LayerName }, "LayerVersions").catch((e) => { showError(e); return []; });
    vs.forEach((v) => versionSel.append(h("option", { value: v.LayerVersionArn }, `${v.Version}${v.Description ? ` - ${v.Description}` : ""}`)));
  });
  const mineBox = h("div", { class: "row" }, field("Layer", layerSel), field("Version", versionSel));
  const arnBox = h("div", { class: "row", hidden: true }, field("Layer version ARN", arnIn, "a layer shared with this account, or public"));
  source.addEventListener("change", () => { mineBox.hidden = source.value !== "mine"; arnBox.hidden = source.value !== "arn"; });
  const addButton = h("button", { class: "primary", type: "submit", id: "add-layer" }, "Add");
  const addForm = h("form", { onsubmit: (ev) => {
    ev.preventDefault();
    let arn;
    if (source.value === "mine") {
      if (!check(versionSel, !!versionSel.value, "Choose a layer and a version.")) return;
      arn = versionSel.value;
    } else {
      if (!check(arnIn, /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[a-zA-Z0-9_-]+:\d+$/.test(arnIn.value.trim()), "A layer version ARN ends with :layer:NAME:VERSION.")) return;
      arn = arnIn.value.trim();
    }
    if (!check(addButton, layers.length < 5, "A function can use at most 5 layers.")) return;
    saveLayers([...layers, arn], addButton);
  } }, h("div", { class: "row" }, field("Source", source)), mineBox, arnBox, h("div", { class: "row" }, addButton));
  const layersCard = h("div", { class: "card" }, h("h2", {}, "Layers"),
    h("p", { class: "hint" }, "Layers are extracted into /opt in this order: when two layers contain the same file, the later layer's copy wins (and the function's own code in /var/task comes first on sys.path). Up to 5 layers."),
    layers.length ? list : h("p", { class: "hint" }, "No layers."), h("h2", {}, "Add a layer"), addForm);

  // Environment variables
  const vars = Object.entries((c.Environment || {}).Variables || {});
  const rows = h("div", { id: "env-rows" });
  const addRow = (k = "", v = "") => rows.append(h("div", { class: "row" }, h("input", { type: "text", class: "env-key", value: k, placeholder: "KEY" }),
    h("input", { type: "text", class: "env-value", value: v, placeholder: "value", size: "40" }),
    h("button", { type: "button", onclick: (ev) => ev.target.parentElement.remove() }, "Remove")));
  vars.forEach(([k, v]) => addRow(k, v));
  const saveEnv = h("button", { class: "primary", type: "submit", id: "save-env" }, "Save");
  const envForm = h("form", { class: "card", onsubmit: (ev) => {
    ev.preventDefault();
    const out = {};
    let ok = true;
    rows.querySelectorAll(".row").forEach((r) => {
      const k = r.querySelector(".env-key"), v = r.querySelector(".env-value");
      ok = check(k, /^[a-zA-Z]([a-zA-Z0-9_])*$/.test(k.value) && !(k.value in out), "Letters, digits and _, starting with a letter; unique.") && ok;
      out[k.value] = v.value;
    });
    if (!ok) return;
    submitting(saveEnv, async () => { await update(name, { Environment: { Variables: out } }); notice("Environment saved."); route(); });
  } }, h("h2", {}, "Environment variables"), rows,
    h("div", { class: "row" }, h("button", { type: "button", onclick: () => addRow() }, "Add variable"), saveEnv));

  // VPC
  const vpcCard = h("div", { class: "card", id: "vpc-config" }, h("h2", {}, "VPC"));
  const vc = c.VpcConfig || {};
  vpcCard.append(h("p", {}, vc.VpcId ? `Connected to ${vc.VpcId}: subnets ${(vc.SubnetIds || []).join(", ")}; security groups ${(vc.SecurityGroupIds || []).join(", ")}.` : "Not connected to a VPC (the function reaches the internet through lamina's default network)."),
    h("p", {}, "State: ", stateBadge(c.State), c.StateReason ? ` ${c.StateReason}` : ""));
  let vpcs = [];
  try { vpcs = await all("ec2", "DescribeVpcs", {}, "Vpcs", "NextToken", "NextToken"); } catch (e) { showError(e); }
  const vpcSel = h("select", { id: "vpc-choice" }, h("option", { value: "" }, "No VPC"), vpcs.map((v) => h("option", { value: v.VpcId, selected: v.VpcId === vc.VpcId }, `${v.VpcId} (${v.CidrBlock})`)));
  const subnetBox = h("div", { class: "checks", id: "vpc-subnets" });
  const sgBox = h("div", { class: "checks", id: "vpc-groups" });
  const fill = async () => {
    subnetBox.replaceChildren(); sgBox.replaceChildren();
    if (!vpcSel.value) return;
    const f = [{ Name: "vpc-id", Values: [vpcSel.value] }];
    const [subnets, groups] = await Promise.all([
      all("ec2", "DescribeSubnets", { Filters: f }, "Subnets", "NextToken", "NextToken"),
      all("ec2", "DescribeSecurityGroups", { Filters: f }, "SecurityGroups", "NextToken", "NextToken")]);
    subnets.forEach((s) => subnetBox.append(h("label", {}, h("input", { type: "checkbox", name: "subnet", value: s.SubnetId, checked: (vc.SubnetIds || []).includes(s.SubnetId) }), ` ${s.SubnetId} ${s.CidrBlock} ${s.AvailabilityZone} (${s.AvailableIpAddressCount} free)`)));
    groups.forEach((g) => sgBox.append(h("label", {}, h("input", { type: "checkbox", name: "group", value: g.GroupId, checked: (vc.SecurityGroupIds || []).includes(g.GroupId) }), ` ${g.GroupId} ${g.GroupName}`)));
  };
  vpcSel.addEventListener("change", () => fill().catch(showError));
  await fill().catch(showError);
  const saveVpc = h("button", { class: "primary", type: "submit", id: "save-vpc" }, "Save");
  vpcCard.append(h("form", { onsubmit: (ev) => {
    ev.preventDefault();
    const subnets = checked("subnet", vpcCard), groups = checked("group", vpcCard);
    if (vpcSel.value && (!check(subnetBox, subnets.length > 0, "Choose at least one subnet.") | !check(sgBox, groups.length > 0, "Choose at least one security group."))) return;
    submitting(saveVpc, async () => {
      await update(name, { VpcConfig: vpcSel.value ? { SubnetIds: subnets, SecurityGroupIds: groups } : { SubnetIds: [], SecurityGroupIds: [] } });
      notice("VPC configuration saved; the function is Pending until its network interfaces are ready.");
      route();
    });
  } }, h("div", { class: "row" }, field("VPC", vpcSel)), field("Subnets", subnetBox), field("Security groups", sgBox), h("div", { class: "row" }, saveVpc)));
  return [general, layersCard, envForm, vpcCard];
}

// -- versions and aliases -------------------------------------------------------------------------
async function versionsTab(c) {
  const name = c.FunctionName;
  const versions = await all("lambda", "ListVersionsByFunction", { FunctionName: name }, "Versions");
  const published = versions.filter((v) => v.Version !== "$LATEST");
  const description = h("input", { type: "text", id: "version-description", size: "40", placeholder: "optional" });
  const publish = h("button", { class: "primary", type: "submit", id: "publish-version" }, "Publish version");
  const versionsCard = h("div", { class: "card", id: "versions" }, h("h2", {}, "Versions"),
    h("table", {}, h("tr", {}, h("th", {}, "Version"), h("th", {}, "Description"), h("th", {}, "Last modified")),
      versions.map((v) => h("tr", {}, h("td", { class: "mono" }, v.Version), h("td", {}, v.Description || ""), h("td", {}, v.LastModified)))),
    h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      submitting(publish, async () => {
        const v = await call("lambda", "PublishVersion", { FunctionName: name, Description: description.value });
        notice(`Published version ${v.Version}.`); route();
      });
    } }, h("div", { class: "row" }, field("Description", description), publish)));

  let aliases = [];
  try { aliases = await all("lambda", "ListAliases", { FunctionName: name }, "Aliases"); } catch (e) { showError(e); }
  const weightsText = (a) => Object.entries(((a.RoutingConfig || {}).AdditionalVersionWeights) || {})
    .map(([v, w]) => `${Math.round((1 - w) * 100)}% ${a.FunctionVersion}, ${Math.round(w * 100)}% ${v}`).join("") || `100% ${a.FunctionVersion}`;
  const versionOptions = (selected) => [h("option", { value: "$LATEST" }, "$LATEST"),
    ...published.map((v) => h("option", { value: v.Version, selected: v.Version === selected }, v.Version))];
  const rows = aliases.map((a) => {
    const second = h("select", { class: "alias-second" }, h("option", { value: "" }, "no second version"), published.map((v) => h("option", { value: v.Version }, v.Version)));
    const weight = h("input", { type: "number", class: "alias-weight", min: "0", max: "100", value: "10", size: "4" });
    const shift = h("button", { class: "alias-shift" }, "Shift");
    return h("tr", { id: `alias-${a.Name}` }, h("td", { class: "mono" }, a.Name), h("td", {}, weightsText(a)),
      h("td", {}, second, " ", weight, "% ", shift, " ",
        h("button", { class: "danger", onclick: (ev) => submitting(ev.target, async () => {
          if (!confirm(`Delete alias ${a.Name}?`)) return;
          await call("lambda", "DeleteAlias", { FunctionName: name, Name: a.Name }); notice("Alias deleted."); route();
        }) }, "Delete")));
  });
  rows.forEach((row, i) => row.querySelector(".alias-shift").addEventListener("click", (ev) => {
    const a = aliases[i], second = row.querySelector(".alias-second"), weight = row.querySelector(".alias-weight");
    if (!check(weight, +weight.value >= 0 && +weight.value <= 100, "0 to 100 %.")) return;
    const routing = second.value ? { AdditionalVersionWeights: { [second.value]: Number(weight.value) / 100 } } : { AdditionalVersionWeights: {} };
    submitting(ev.target, async () => {
      await call("lambda", "UpdateAlias", { FunctionName: name, Name: a.Name, RoutingConfig: routing }); notice("Weights saved."); route();
    });
  }));
  const aliasName = h("input", { type: "text", id: "alias-name", placeholder: "live" });
  const aliasVersion = h("select", { id: "alias-version" }, versionOptions(published.length ? published[published.length - 1].Version : "$LATEST"));
  const create = h("button", { class: "primary", type: "submit", id: "create-alias" }, "Create alias");
  const aliasesCard = h("div", { class: "card", id: "aliases" }, h("h2", {}, "Aliases"),
    aliases.length ? h("table", {}, h("tr", {}, h("th", {}, "Alias"), h("th", {}, "Routing"), h("th", {}, "Shift traffic to a second version")), rows)
      : h("p", { class: "hint" }, "No aliases."),
    h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      if (!check(aliasName, /^(?!^[0-9]+$)[a-zA-Z0-9-_]{1,128}$/.test(aliasName.value), "Letters, digits, - and _ (not only digits).")) return;
      submitting(create, async () => {
        await call("lambda", "CreateAlias", { FunctionName: name, Name: aliasName.value, FunctionVersion: aliasVersion.value }); notice("Alias created."); route();
      });
    } }, h("div", { class: "row" }, field("Name", aliasName), field("Version", aliasVersion), create)));
  return [versionsCard, aliasesCard];
}

// -- tags, concurrency, function URL --------------------------------------------------------------
async function settingsTab(c) {
  const name = c.FunctionName, arn = c.FunctionArn;
  const cards = [];
  // Tags
  let tags = {};
  try { tags = (await call("lambda", "ListTags", { Resource: arn })).Tags || {}; } catch (e) { showError(e); }
  const tagKey = h("input", { type: "text", id: "tag-key", placeholder: "key" });
  const tagValue = h("input", { type: "text", id: "tag-value", placeholder: "value" });
  const addTag = h("button", { class: "primary", type: "submit", id: "add-tag" }, "Add tag");
  cards.push(h("div", { class: "card", id: "tags" }, h("h2", {}, "Tags"),
    Object.keys(tags).length ? h("ul", {}, Object.entries(tags).map(([k, v]) => h("li", {}, h("span", { class: "mono" }, `${k} = ${v}`), " ",
      h("button", { class: "danger", onclick: (ev) => submitting(ev.target, async () => {
        await call("lambda", "UntagResource", { Resource: arn, TagKeys: [k] }); notice("Tag removed."); route();
      }) }, "Remove")))) : h("p", { class: "hint" }, "No tags."),
    h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      if (!check(tagKey, tagKey.value.length >= 1 && tagKey.value.length <= 128, "1 to 128 characters.")) return;
      submitting(addTag, async () => {
        await call("lambda", "TagResource", { Resource: arn, Tags: { [tagKey.value]: tagValue.value } }); notice("Tag added."); route();
      });
    } }, h("div", { class: "row" }, field("Key", tagKey), field("Value", tagValue), addTag))));
  // Reserved concurrency
  let reserved = null;
  try { reserved = (await call("lambda", "GetFunctionConcurrency", { FunctionName: name })).ReservedConcurrentExecutions; } catch (e) { showError(e); }
  const concurrency = h("input", { type: "number", id: "reserved-concurrency", min: "0", value: reserved ?? "" });
  const saveConcurrency = h("button", { class: "primary", type: "submit", id: "save-concurrency" }, "Save");
  cards.push(h("div", { class: "card", id: "concurrency" }, h("h2", {}, "Reserved concurrency"),
    h("p", { class: "hint" }, reserved == null ? "None: the function uses the account's unreserved concurrency." : `${reserved} reserved.`),
    h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      submitting(saveConcurrency, async () => {
        if (concurrency.value === "") await call("lambda", "DeleteFunctionConcurrency", { FunctionName: name });
        else await call("lambda", "PutFunctionConcurrency", { FunctionName: name, ReservedConcurrentExecutions: Number(concurrency.value) });
        notice("Concurrency saved."); route();
      });
    } }, h("div", { class: "row" }, field("Reserved (empty: none)", concurrency), saveConcurrency))));
  // Provisioned concurrency (per version or alias)
  let provisioned = [];
  try { provisioned = (await call("lambda", "ListProvisionedConcurrencyConfigs", { FunctionName: name })).ProvisionedConcurrencyConfigs || []; } catch (e) { showError(e); }
  const pcQualifier = h("input", { type: "text", id: "provisioned-qualifier", placeholder: "version or alias" });
  const pcCount = h("input", { type: "number", id: "provisioned-count", min: "1", value: "1" });
  const savePc = h("button", { class: "primary", type: "submit", id: "save-provisioned" }, "Provision");
  cards.push(h("div", { class: "card", id: "provisioned" }, h("h2", {}, "Provisioned concurrency"),
    provisioned.length ? h("ul", {}, provisioned.map((p) => {
      const qualifier = p.FunctionArn.split(":").pop();
      return h("li", { class: "provisioned-config" },
        h("span", { class: "mono" }, qualifier), ` ${p.AvailableProvisionedConcurrentExecutions ?? 0}/${p.RequestedProvisionedConcurrentExecutions} ready, ${p.Status}`,
        p.StatusReason ? h("span", { class: "hint" }, ` (${p.StatusReason})`) : "", " ",
        h("button", { class: "danger", onclick: (ev) => submitting(ev.target, async () => {
          await call("lambda", "DeleteProvisionedConcurrencyConfig", { FunctionName: name, Qualifier: qualifier }); notice("Provisioned concurrency removed."); route();
        }) }, "Remove"));
    })) : h("p", { class: "hint" }, "None: every invocation may start an environment (a cold start)."),
    h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      if (!check(pcQualifier, pcQualifier.value.length >= 1, "A published version or an alias.")) return;
      if (!check(pcCount, Number(pcCount.value) >= 1, "At least 1.")) return;
      submitting(savePc, async () => {
        await call("lambda", "PutProvisionedConcurrencyConfig", { FunctionName: name, Qualifier: pcQualifier.value, ProvisionedConcurrentExecutions: Number(pcCount.value) });
        notice("Provisioning started."); route();
      });
    } }, h("div", { class: "row" }, field("Qualifier", pcQualifier), field("Environments", pcCount), savePc))));
  // Function URL
  let url = null;
  try { url = await call("lambda", "GetFunctionUrlConfig", { FunctionName: name }); } catch (e) { if (e.code !== "ResourceNotFoundException") showError(e); }
  const authType = h("select", { id: "url-auth" }, h("option", { value: "NONE" }, "NONE (public)"), h("option", { value: "AWS_IAM" }, "AWS_IAM"));
  const createUrl = h("button", { class: "primary", type: "submit", id: "create-url" }, "Create function URL");
  cards.push(h("div", { class: "card", id: "function-url" }, h("h2", {}, "Function URL"),
    url ? [h("p", {}, h("a", { href: url.FunctionUrl, target: "_blank", rel: "noopener", id: "url-link" }, url.FunctionUrl), ` (${url.AuthType})`),
      h("button", { class: "danger", onclick: (ev) => submitting(ev.target, async () => {
        await call("lambda", "DeleteFunctionUrlConfig", { FunctionName: name }); notice("Function URL deleted."); route();
      }) }, "Delete function URL")]
      : h("form", { onsubmit: (ev) => {
        ev.preventDefault();
        submitting(createUrl, async () => {
          await call("lambda", "CreateFunctionUrlConfig", { FunctionName: name, AuthType: authType.value }); notice("Function URL created."); route();
        });
      } }, h("p", { class: "hint" }, "NONE also needs a resource policy letting everyone call it (lambda:InvokeFunctionUrl and lambda:InvokeFunction)."),
        h("div", { class: "row" }, field("Auth type", authType), createUrl))));
  return cards;
}

function parseReport(log) {
  // LogFormat JSON: the platform.report event's metrics.
  for (const line of log.split("\n")) {
    if (!line.startsWith('{"time"')) continue;
    try {
      const e = JSON.parse(line);
      if (e.type !== "platform.report") continue;
      const x = e.record.metrics;
      return {
        duration: `${x.durationMs} ms`, billed: `${x.billedDurationMs} ms`, memory: `${x.maxMemoryUsedMB} MB`,
        init: x.initDurationMs == null ? null : `${x.initDurationMs} ms`,
      };
    } catch (e) { /* not an event of Lambda's */ }
  }
  const m = (re) => { const x = log.match(re); return x ? x[1] : null; };
  return {
    duration: m(/\tDuration: ([\d.]+ ms)/), billed: m(/Billed Duration: (\d+ ms)/),
    memory: m(/Max Memory Used: (\d+ MB)/), init: m(/Init Duration: ([\d.]+ ms)/),
  };
}

function testTab(name) {
  const saved = localStorage.getItem(`lamina.event.${name}`) || '{\n  "key": "value"\n}';
  const event = h("textarea", { id: "test-event", spellcheck: "false" }, saved);
  const result = h("div", { id: "test-result" });
  const button = h("button", { class: "primary", type: "submit", id: "test-invoke" }, "Test");
  return h("form", { class: "card", onsubmit: (ev) => {
    ev.preventDefault();
    let ok = true;
    try { JSON.parse(event.value); } catch (e) { ok = false; }
    if (!check(event, ok, "The event must be valid JSON.")) return;
    localStorage.setItem(`lamina.event.${name}`, event.value);
    submitting(button, async () => {
      result.replaceChildren(h("p", { class: "hint" }, "Running…"));
      const out = await call("lambda", "Invoke", { FunctionName: name, Payload: b64encode(event.value), LogType: "Tail" });
      const payload = b64decode(out.Payload);
      const log = out.LogResult ? b64decode(out.LogResult) : "";
      const r = parseReport(log);
      result.replaceChildren(
        h("h2", { class: out.FunctionError ? "state Failed" : "state Active" }, out.FunctionError ? `Failed (${out.FunctionError})` : "Succeeded"),
        h("dl", { class: "kv" }, h("dt", {}, "Duration"), h("dd", { id: "r-duration" }, r.duration || "-"),
          h("dt", {}, "Billed duration"), h("dd", { id: "r-billed" }, r.billed || "-"),
          h("dt", {}, "Max memory used"), h("dd", { id: "r-memory" }, r.memory || "-"),
          h("dt", {}, "Init duration"), h("dd", { id: "r-init" }, r.init || "(warm start)"),
          h("dt", {}, "Executed version"), h("dd", {}, out.ExecutedVersion || "")),
        h("h2", {}, "Result"), h("pre", { id: "r-payload" }, payload),
        h("h2", {}, "Log output (tail)"), h("pre", { id: "r-log" }, log));
    });
  } }, h("h2", {}, "Test event"), event, h("div", { class: "row" }, button), result);
}

async function logsTab(name, c) {
  // The function's log group in CloudWatch Logs (LoggingConfig.LogGroup): its newest streams first.
  const group = (c.LoggingConfig && c.LoggingConfig.LogGroup) || `/aws/lambda/${name}`;
  const out = await api("logs", { region: state.region, function: name, logGroup: group });
  return h("div", { class: "card", id: "logs" }, h("div", { class: "row" }, h("button", { onclick: () => route() }, "Refresh")),
    h("p", { class: "hint" }, "Log group ", h("span", { class: "mono", id: "log-group" }, group), " (newest streams first)"),
    out.streams.length ? out.streams.map((s) => [h("h2", { class: "mono" }, s.stream), h("pre", {}, s.text)]) : h("p", { class: "hint" }, "No logs yet: invoke the function."));
}

// VPC -------------------------------------------------------------------------------------------
async function vpcPage() {
  const q = (op, key) => all("ec2", op, {}, key, "NextToken", "NextToken");
  const [vpcs, subnets, groups, enis, igws, nats, tables, fns] = await Promise.all([
    q("DescribeVpcs", "Vpcs"), q("DescribeSubnets", "Subnets"), q("DescribeSecurityGroups", "SecurityGroups"),
    q("DescribeNetworkInterfaces", "NetworkInterfaces"), q("DescribeInternetGateways", "InternetGateways"),
    q("DescribeNatGateways", "NatGateways"), q("DescribeRouteTables", "RouteTables"),
    all("lambda", "ListFunctions", {}, "Functions")]);
  const tag = (x) => ((x.Tags || []).find((t) => t.Key === "Name") || {}).Value || "";
  const size = (cidr) => 2 ** (32 - Number(cidr.split("/")[1])) - 5;
  const rule = (p) => `${p.IpProtocol === "-1" ? "all" : p.IpProtocol}${p.FromPort !== undefined && p.IpProtocol !== "-1" ? ` ${p.FromPort}-${p.ToPort}` : ""} ` +
    [...(p.IpRanges || []).map((r) => r.CidrIp), ...(p.UserIdGroupPairs || []).map((g) => g.GroupId)].join(", ");
  const sharing = (eni) => {
    const mine = (eni.Groups || []).map((g) => g.GroupId).sort().join(",");
    return fns.filter((f) => f.VpcConfig && (f.VpcConfig.SubnetIds || []).includes(eni.SubnetId) &&
      [...(f.VpcConfig.SecurityGroupIds || [])].sort().join(",") === mine).map((f) => f.FunctionName);
  };
  page("VPC",
    h("h2", {}, "VPCs"), table(["VPC", "Name", "CIDR", "State", "Default"], vpcs.map((v) => [v.VpcId, tag(v), v.CidrBlock, stateBadge(v.State), v.IsDefault ? "yes" : ""])),
    h("h2", {}, "Subnets"), table(["Subnet", "VPC", "CIDR", "Zone", "Available addresses"], subnets.map((s) => {
      const total = size(s.CidrBlock), free = s.AvailableIpAddressCount;
      return [s.SubnetId, s.VpcId, s.CidrBlock, s.AvailabilityZone,
        h("span", { class: "subnet-free" }, h("span", { class: `bar ${free / total < 0.1 ? "low" : ""}` }, h("span", { style: `width:${Math.round(100 * free / Math.max(total, 1))}%` })), `${free} of ${total} free`)];
    })),
    h("h2", {}, "Security groups"), table(["Group", "Name", "VPC", "Inbound", "Outbound"], groups.map((g) => [g.GroupId, g.GroupName, g.VpcId,
      h("div", {}, (g.IpPermissions || []).map((p) => h("div", { class: "mono" }, rule(p)))),
      h("div", {}, (g.IpPermissionsEgress || []).map((p) => h("div", { class: "mono" }, rule(p))))])),
    h("h2", {}, "Network interfaces"), h("div", { id: "enis" }, table(["Interface", "Type", "Subnet", "Address", "Security groups", "Status", "Functions sharing it"], enis.map((e) => [
      e.NetworkInterfaceId, e.InterfaceType || "", e.SubnetId, e.PrivateIpAddress, (e.Groups || []).map((g) => g.GroupId).join(", "), stateBadge(e.Status),
      e.InterfaceType === "lambda" || /Lambda/.test(e.Description || "") ? sharing(e).join(", ") : ""]))),
    h("h2", {}, "Internet gateways"), table(["Gateway", "Attached to"], igws.map((g) => [g.InternetGatewayId, (g.Attachments || []).map((a) => a.VpcId).join(", ")])),
    h("h2", {}, "NAT gateways"), table(["Gateway", "Subnet", "State", "Public address"], nats.map((n) => [n.NatGatewayId, n.SubnetId, stateBadge(n.State),
      (n.NatGatewayAddresses || []).map((a) => a.PublicIp).join(", ")])),
    h("h2", {}, "Route tables"), table(["Table", "VPC", "Routes", "Associations"], rts(tables)));
  function rts(list) {
    return list.map((t) => [t.RouteTableId, t.VpcId,
      h("div", {}, (t.Routes || []).map((r) => h("div", { class: "mono" }, `${r.DestinationCidrBlock} → ${r.GatewayId || r.NatGatewayId || r.NetworkInterfaceId || "-"} (${r.State})`))),
      (t.Associations || []).map((a) => (a.Main ? "main" : a.SubnetId)).join(", ")]);
  }
}

// Buckets (S3) -----------------------------------------------------------------------------------
// Listing, creating and deleting are S3 operations like any other (POST /console/api/call). Object
// bodies never travel in JSON: an upload is one PUT of the file to /console/api/upload, which the
// server streams into PutObject as it arrives (the browser sends the File from disk, so a 1 GB file
// is never in memory on either side), or for a file over 5 GB one such PUT per part (UploadPart);
// a download is a one-use link the browser saves as it comes.
const enc = encodeURIComponent;
const BUCKET_REGIONS = ["us-east-1", ...REGIONS.filter((r) => r !== "us-east-1")];
const bytes = (n) => n == null ? "" : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB`
  : n < 1073741824 ? `${(n / 1048576).toFixed(1)} MB` : `${(n / 1073741824).toFixed(2)} GB`;
const bucketHref = (bucket, prefix = "") => `#/buckets/${enc(bucket)}${prefix ? `/${enc(prefix)}` : ""}`;

async function bucketsPage() {
  const out = await call("s3", "ListBuckets", {});
  const buckets = out.Buckets || [];
  state.bucketRegions = Object.fromEntries(buckets.map((b) => [b.Name, b.BucketRegion]));
  const name = h("input", { type: "text", id: "bucket-name", size: "40", placeholder: "my-bucket" });
  const region = h("select", { id: "bucket-region" }, BUCKET_REGIONS.map((r) => h("option", { value: r, selected: r === state.region }, r)));
  const button = h("button", { class: "primary", type: "submit", id: "create-bucket" }, "Create bucket");
  const form = h("form", { class: "card", id: "create-bucket-form", onsubmit: (ev) => {
    ev.preventDefault();
    // Only the obvious is checked here; S3's own rules (and its words) come from CreateBucket.
    if (!check(name, name.value.trim() !== "", "Enter a bucket name.")) return;
    submitting(button, async () => {
      // us-east-1 takes no LocationConstraint; every other Region must be named, and the request
      // is made in that Region (S3's CreateBucket rules).
      const params = { Bucket: name.value.trim() };
      if (region.value !== "us-east-1") params.CreateBucketConfiguration = { LocationConstraint: region.value };
      await callIn(region.value, "s3", "CreateBucket", params);
      notice(`Created bucket ${params.Bucket} in ${region.value}.`);
      route();
    });
  } }, h("h2", {}, "Create a bucket"),
  h("div", { class: "row" }, field("Bucket name", name, "3 to 63 lower-case letters, digits, dots and hyphens; unique across all accounts"), field("Region", region), button));
  page("Buckets",
    h("p", { class: "hint" }, "Every bucket of this account, in every Region."),
    h("div", { id: "buckets" }, table(["Name", "Region", "Created"], buckets.map((b) => [
      h("a", { href: bucketHref(b.Name) }, b.Name), b.BucketRegion || "", b.CreationDate || ""]), "No buckets yet: create one below.")),
    form);
}

// Every key under a prefix (for deleting a folder, or emptying a bucket).
async function keysUnder(region, bucket, prefix) {
  const keys = [];
  let token;
  do {
    const out = await callIn(region, "s3", "ListObjectsV2", { Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) });
    keys.push(...(out.Contents || []).map((o) => o.Key));
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

// DeleteObjects 1,000 keys at a time; the keys S3 could not delete are reported as it words them.
async function deleteKeys(region, bucket, keys) {
  const failed = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const out = await callIn(region, "s3", "DeleteObjects", { Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: k })), Quiet: true } });
    failed.push(...(out.Errors || []));
  }
  if (failed.length) throw new ApiError(failed[0].Code, `${failed.length} object(s) not deleted, e.g. ${failed[0].Key}: ${failed[0].Message}`);
}

// One request of an upload: `body` (a File, or a slice of one) PUT as the browser reads it from
// disk; the progress comes from the upload itself.
function putBody(query, body, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/console/api/upload?${new URLSearchParams(query)}`);
    xhr.setRequestHeader("X-Lamina-Console", "1");
    xhr.upload.addEventListener("progress", (e) => progress(e.loaded));
    xhr.addEventListener("load", () => {
      let doc = {};
      try { doc = JSON.parse(xhr.responseText); } catch (e) { doc = {}; }
      if (xhr.status === 200) { resolve(doc.result || {}); return; }
      const err = doc.error || { code: `HTTP${xhr.status}`, message: xhr.statusText };
      if (xhr.status === 401) { state.account = null; location.hash = "#/signin"; }
      reject(new ApiError(err.code, err.message, xhr.status));
    });
    xhr.addEventListener("error", () => reject(new ApiError("NetworkError", "The upload was interrupted (the server refused it or cannot be reached).")));
    xhr.addEventListener("abort", () => reject(new ApiError("Aborted", "The upload was cancelled.")));
    xhr.send(body);
  });
}

// S3's limits: one PutObject takes up to 5 GB; past that, a multipart upload of at most 10,000
// parts (each 5 MB to 5 GB but the last). The two knobs in localStorage exist for tests, which
// cannot send 5 GB.
const MAX_PUT = Number(localStorage.getItem("lamina.multipartAbove")) || 5 * 1024 ** 3;
const MIN_PART = Number(localStorage.getItem("lamina.partSize")) || 64 * 1024 ** 2;

async function uploadFile(region, bucket, key, file, progress) {
  if (file.size <= MAX_PUT) return putBody({ region, bucket, key }, file, progress);
  // Parts one after the other, each a slice of the file streamed like a small upload.
  const partSize = Math.max(MIN_PART, Math.ceil(file.size / 10000));
  const { UploadId } = await callIn(region, "s3", "CreateMultipartUpload", { Bucket: bucket, Key: key, ...(file.type ? { ContentType: file.type } : {}) });
  try {
    const parts = [];
    for (let n = 1, at = 0; at < file.size; n++, at += partSize) {
      const slice = file.slice(at, Math.min(at + partSize, file.size));
      const out = await putBody({ region, bucket, key, uploadId: UploadId, partNumber: n }, slice, (loaded) => progress(at + loaded));
      parts.push({ PartNumber: n, ETag: out.ETag });
    }
    return await callIn(region, "s3", "CompleteMultipartUpload", { Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } });
  } catch (e) {
    // Parts already stored would otherwise stay (and count) until someone aborts the upload.
    await callIn(region, "s3", "AbortMultipartUpload", { Bucket: bucket, Key: key, UploadId }).catch(() => {});
    throw e;
  }
}

async function bucketPage(bucket, prefix = "") {
  let region = (state.bucketRegions || {})[bucket];
  if (!region) {
    const head = await call("s3", "HeadBucket", { Bucket: bucket });
    region = head.BucketRegion || state.region;
  }
  const listing = h("div", { id: "objects" });
  const more = h("button", { id: "more-objects", hidden: true }, "Show more");
  const rows = h("tbody");
  let token;
  const selected = () => [...rows.querySelectorAll("input.pick:checked")];
  const load = async () => {
    const out = await callIn(region, "s3", "ListObjectsV2", { Bucket: bucket, Prefix: prefix, Delimiter: "/", ...(token ? { ContinuationToken: token } : {}) });
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
    more.hidden = !token;
    for (const p of out.CommonPrefixes || []) {
      rows.append(h("tr", { class: "folder" }, h("td", {}, h("input", { type: "checkbox", class: "pick", "data-prefix": p.Prefix, "aria-label": `select ${p.Prefix}` })),
        h("td", {}, h("a", { href: bucketHref(bucket, p.Prefix), class: "object-name" }, p.Prefix.slice(prefix.length))), h("td", {}, "folder"), h("td", {}), h("td", {})));
    }
    for (const o of out.Contents || []) {
      if (o.Key === prefix) continue;  // the folder's own marker object
      rows.append(h("tr", { class: "object" }, h("td", {}, h("input", { type: "checkbox", class: "pick", "data-key": o.Key, "aria-label": `select ${o.Key}` })),
        h("td", {}, h("span", { class: "object-name mono" }, o.Key.slice(prefix.length))), h("td", {}, bytes(o.Size)), h("td", {}, o.LastModified || ""),
        h("td", {}, h("button", { class: "download", onclick: (ev) => submitting(ev.target, async () => {
          const link = await api("download", { region, Bucket: bucket, Key: o.Key });
          location.href = link.url;
        }) }, "Download"))));
    }
    if (!rows.children.length) listing.replaceChildren(h("p", { class: "hint" }, prefix ? "This folder is empty." : "This bucket is empty: upload a file."));
    else listing.replaceChildren(h("table", {}, h("thead", {}, h("tr", {}, ["", "Name", "Size", "Last modified", ""].map((x) => h("th", {}, x)))), rows));
  };
  more.addEventListener("click", (ev) => submitting(ev.target, load));

  // Upload: into the folder on screen, one file after the other.
  const files = h("input", { type: "file", id: "upload-files", multiple: true });
  const bar = h("progress", { id: "upload-progress", max: "100", value: "0", hidden: true });
  const status = h("span", { id: "upload-status", class: "hint" });
  const uploadButton = h("button", { class: "primary", type: "submit", id: "upload" }, "Upload");
  const uploadForm = h("form", { class: "card", onsubmit: (ev) => {
    ev.preventDefault();
    if (!check(files, files.files.length > 0, "Choose one or more files.")) return;
    submitting(uploadButton, async () => {
      const list = [...files.files];
      const total = list.reduce((n, f) => n + f.size, 0) || 1;
      let done = 0;
      bar.hidden = false;
      bar.value = 0;
      for (const f of list) {
        const key = prefix + f.name;
        status.textContent = `Uploading ${key}…`;
        await uploadFile(region, bucket, key, f, (loaded) => {
          bar.value = Math.round(100 * (done + loaded) / total);
          status.textContent = `Uploading ${key}: ${bytes(done + loaded)} of ${bytes(total)} (${bar.value}%)`;
        });
        done += f.size;
      }
      bar.value = 100;
      status.textContent = `Uploaded ${list.length} file(s), ${bytes(done)}.`;
      notice(`Uploaded ${list.map((f) => prefix + f.name).join(", ")}.`);
      rows.replaceChildren();
      token = undefined;
      await load();
    });
  } }, h("h2", {}, `Upload to ${prefix || "the bucket's top level"}`),
  h("div", { class: "row" }, field("Files", files, "files over 5 GB go up in parts (a multipart upload)"), uploadButton),
  h("div", { class: "row" }, bar, status));

  const deleteButton = h("button", { class: "danger", id: "delete-selected", onclick: (ev) => {
    const picked = selected();
    if (!picked.length) { showError({ message: "Select the objects or folders to delete." }); return; }
    if (!confirm(`Delete ${picked.length} selected item(s)? Folders are deleted with everything in them.`)) return;
    submitting(ev.target, async () => {
      const keys = picked.filter((i) => i.dataset.key !== undefined).map((i) => i.dataset.key);
      for (const i of picked.filter((x) => x.dataset.prefix !== undefined)) keys.push(...(await keysUnder(region, bucket, i.dataset.prefix)));
      await deleteKeys(region, bucket, keys);
      notice(`Deleted ${keys.length} object(s).`);
      route();
    });
  } }, "Delete selected");
  const emptyButton = h("button", { class: "danger", id: "empty-bucket", onclick: (ev) => {
    if (!confirm(`Delete every object in ${bucket}?`)) return;
    submitting(ev.target, async () => {
      const keys = await keysUnder(region, bucket, "");
      await deleteKeys(region, bucket, keys);
      // Unfinished multipart uploads hold parts too: aborted with the rest.
      const uploads = (await callIn(region, "s3", "ListMultipartUploads", { Bucket: bucket })).Uploads || [];
      for (const u of uploads) await callIn(region, "s3", "AbortMultipartUpload", { Bucket: bucket, Key: u.Key, UploadId: u.UploadId });
      notice(`Emptied ${bucket}: ${keys.length} object(s) deleted.`);
      route();
    });
  } }, "Empty bucket");
  const dropButton = h("button", { class: "danger", id: "delete-bucket", onclick: (ev) => {
    if (!confirm(`Delete the bucket ${bucket}? It must be empty.`)) return;
    submitting(ev.target, async () => {
      await callIn(region, "s3", "DeleteBucket", { Bucket: bucket });
      notice(`Deleted bucket ${bucket}.`);
      location.hash = "#/buckets";
    });
  } }, "Delete bucket");

  const crumbs = [h("a", { href: "#/buckets" }, "Buckets"), " / ", h("a", { href: bucketHref(bucket) }, bucket)];
  let upTo = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    upTo += `${part}/`;
    crumbs.push(" / ", h("a", { href: bucketHref(bucket, upTo) }, part));
  }
  page(`Bucket ${bucket}`, h("p", { id: "crumbs" }, crumbs), h("p", { class: "hint" }, `Region ${region}`),
    uploadForm, h("div", { class: "row" }, deleteButton, emptyButton, dropButton), listing, h("div", { class: "row" }, more));
  await load();
}

// -- routing ------------------------------------------------------------------------------------
async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.section === parts[0]));
  if (!state.account) {
    try { signedIn(await api("whoami")); } catch (e) { signinPage(); return; }
  }
  try {
    const [section, a, b] = parts;
    if (section === "signin") { signinPage(); return; }
    if (section === "functions") {
      if (a === "new") await createFunctionPage();
      else if (a) await functionPage(a, b);
      else await functionsPage();
    } else if (section === "vpc") await vpcPage();
    else if (section === "buckets" && a) await bucketPage(a, b || "");
    else if (section === "buckets") await bucketsPage();
    else if (section === "layers" && a === "new") page("Create layer", layerForm());
    else if (section === "layers" && a && b) await layerPermissionsPage(a, b);
    else if (section === "layers" && a) await layerPage(a);
    else await layersPage();
  } catch (e) {
    showError(e);
  }
}

$("#region").append(...REGIONS.map((r) => h("option", { value: r }, r)));
$("#region").value = state.region;
$("#region").addEventListener("change", (ev) => { setRegion(ev.target.value); notice(""); route(); });
$("#signout").addEventListener("click", async () => {
  await api("signout").catch(() => {});
  state.account = null;
  for (const id of ["#nav", "#region-box", "#signout"]) $(id).hidden = true;
  $("#who").textContent = "";
  location.hash = "#/signin";
});
window.addEventListener("hashchange", () => {
  showError(null);
  if (Date.now() - (state.noticeAt || 0) > 1500) notice("");  // keep a notice set just before navigating
  route();
});
route();
