#!/usr/bin/env node
// Browser test (label "browser"): the / and /cluster pages of visits-server, loaded in
// headless Chromium (Debian's chromium package), show the count, one bar per pod and the
// total, the / page's link leads to /cluster, a stopped pod stays in the total and is
// marked stale, and the browser reports no console message of level error, no uncaught
// exception and no failed resource load. Screenshots of /cluster are kept in
// $VISITS_ARTIFACTS (default: the working directory) and their paths printed.
//
//   VISITS_SERVER=build/adapters/h2o/visits-server node tests/browser/pages.mjs
//
// Chromium is driven over the DevTools protocol through --remote-debugging-pipe (file
// descriptors 3 and 4, NUL-separated JSON): no npm package, no downloaded browser.
// Two servers run on free loopback ports, each listing the other in --peers. Exit status:
// 0 passed, 1 failed, 77 (ctest skip) when chromium or the server binary is missing,
// except under CI=true, where that fails too.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SERVER = process.env.VISITS_SERVER ?? "";
const CI = ["1", "true", "yes"].includes((process.env.CI ?? "").toLowerCase());
const STEP_MS = 20000; // any single wait (a page load, a server start)
const ARTIFACTS = resolve(process.env.VISITS_ARTIFACTS ?? ".");

function skip(why) {
    if (CI) fail(`${why} (CI=true: the browser test may not be skipped)`);
    console.error(`SKIP: ${why}`);
    cleanup();
    process.exit(77);
}
function fail(msg) {
    console.error(`FAIL: ${msg}`);
    cleanup();
    process.exit(1);
}
function ok(msg) {
    console.log(`ok: ${msg}`);
}

const tmp = mkdtempSync(join(tmpdir(), "visits-browser-"));
const children = [];
function cleanup() {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    rmSync(tmp, { recursive: true, force: true });
}

function withTimeout(promise, what, ms = STEP_MS) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms))),
    ]).finally(() => clearTimeout(timer));
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = createServer();
        s.on("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

// ---- the servers --------------------------------------------------------------------
async function startServer(name, port, peers, value) {
    const dir = join(tmp, name);
    const log = join(tmp, `${name}.log`);
    mkdirSync(dir);
    writeFileSync(join(dir, "visits"), `${value}\n`);
    const out = openSync(log, "w");
    const child = spawn(SERVER, ["--bind", "127.0.0.1", "--port", String(port), "--data-dir", dir, "--threads", "1", "--pod-name", name, "--peers", peers.join(","), "--sync-peers-ms", "200"], {
        stdio: ["ignore", out, out],
    });
    children.push(child);
    const deadline = Date.now() + STEP_MS;
    while (!/listening on/.test(readFileSync(log, "utf8"))) {
        if (child.exitCode !== null) fail(`${name} exited ${child.exitCode}: ${readFileSync(log, "utf8")}`);
        if (Date.now() > deadline) fail(`${name} did not start: ${readFileSync(log, "utf8")}`);
        await new Promise((r) => setTimeout(r, 20));
    }
    return { name, child, log, url: `http://127.0.0.1:${port}` };
}

// GET url as JSON until pred(body) holds (a server turning ready, an exchange done).
async function waitJson(url, pred, what) {
    const deadline = Date.now() + STEP_MS;
    let last;
    while (Date.now() < deadline) {
        try {
            const r = await fetch(url, { headers: { Accept: "application/json" } });
            last = `${r.status} ${await r.text()}`;
            if (r.ok && pred(JSON.parse(last.slice(4)))) return;
        } catch (e) {
            last = String(e);
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    fail(`${what}: not within ${STEP_MS} ms (last: ${last})`);
}

async function stopServer(s) {
    const exited = new Promise((r) => s.child.once("exit", (code, sig) => r(code ?? sig)));
    s.child.kill("SIGTERM");
    const code = await withTimeout(exited, `${s.name} after SIGTERM`, 5000);
    if (code !== 0) fail(`${s.name} exited ${code} after SIGTERM: ${readFileSync(s.log, "utf8")}`);
}

// A PNG of the page, kept for whoever looks at the run.
async function screenshot(page, name) {
    const { data } = await page("Page.captureScreenshot", { format: "png" });
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = join(ARTIFACTS, name);
    writeFileSync(path, Buffer.from(data, "base64"));
    console.log(`screenshot: ${path}`);
}

// ---- a minimal DevTools protocol client over the pipe ---------------------------------
class Browser {
    constructor() {
        this.profile = join(tmp, "profile");
        this.proc = spawn(
            CHROMIUM,
            ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-default-browser-check", `--user-data-dir=${this.profile}`, "--remote-debugging-pipe", "about:blank"],
            { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
        );
        children.push(this.proc);
        this.stderr = "";
        this.proc.stderr.on("data", (d) => (this.stderr = (this.stderr + d).slice(-20000)));
        this.nextId = 1;
        this.pending = new Map();
        this.listeners = [];
        this.buf = "";
        this.proc.stdio[4].on("data", (d) => {
            this.buf += d.toString("utf8");
            let i;
            while ((i = this.buf.indexOf("\0")) >= 0) {
                const msg = JSON.parse(this.buf.slice(0, i));
                this.buf = this.buf.slice(i + 1);
                if (msg.id !== undefined && this.pending.has(msg.id)) {
                    const { resolve, reject, method } = this.pending.get(msg.id);
                    this.pending.delete(msg.id);
                    if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
                    else resolve(msg.result);
                } else {
                    for (const l of this.listeners) l(msg);
                }
            }
        });
        this.exited = new Promise((r) => this.proc.once("exit", r));
    }
    send(method, params = {}, sessionId) {
        const id = this.nextId++;
        const p = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, method }));
        this.proc.stdio[3].write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
        return withTimeout(p, method);
    }
    on(fn) {
        this.listeners.push(fn);
    }
    waitFor(pred, what) {
        return withTimeout(
            new Promise((resolve) => {
                const l = (m) => {
                    if (pred(m)) {
                        this.listeners = this.listeners.filter((x) => x !== l);
                        resolve(m);
                    }
                };
                this.listeners.push(l);
            }),
            what,
        );
    }
}

// ---- the test -------------------------------------------------------------------------
if (!SERVER || !existsSync(SERVER)) skip(`VISITS_SERVER does not name the visits-server binary (got ${JSON.stringify(SERVER)})`);
if (!existsSync(CHROMIUM)) skip(`${CHROMIUM} not found (apt-get install chromium)`);

async function main() {
    const [p0, p1] = [await freePort(), await freePort()];
    const peers = [`127.0.0.1:${p0}`, `127.0.0.1:${p1}`];
    const s0 = await startServer("browser-0", p0, peers, 41);
    const s1 = await startServer("browser-1", p1, peers, 7);

    // The exchange's first round (the recovery) must be done before /cluster answers.
    for (const s of [s0, s1]) await waitJson(`${s.url}/ready`, (d) => d.status === "ready", `${s.name} ready`);

    const b = new Browser();
    const problems = []; // console errors, exceptions, failed loads
    b.on((m) => {
        if (m.method === "Runtime.consoleAPICalled" && ["error", "assert"].includes(m.params.type))
            problems.push(`console.${m.params.type}: ${m.params.args.map((a) => a.value ?? a.description).join(" ")}`);
        if (m.method === "Runtime.exceptionThrown") problems.push(`exception: ${m.params.exceptionDetails.text} ${m.params.exceptionDetails.exception?.description ?? ""}`);
        if (m.method === "Log.entryAdded" && m.params.entry.level === "error") problems.push(`log (${m.params.entry.source}): ${m.params.entry.text} ${m.params.entry.url ?? ""}`);
        if (m.method === "Network.loadingFailed") problems.push(`load failed: ${m.params.errorText}`);
        if (m.method === "Network.responseReceived" && m.params.response.status >= 400) problems.push(`HTTP ${m.params.response.status} for ${m.params.response.url}`);
    });
    const { targetId } = await b.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await b.send("Target.attachToTarget", { targetId, flatten: true });
    const page = (method, params) => b.send(method, params, sessionId);
    for (const d of ["Page", "Runtime", "Log", "Network"]) await page(`${d}.enable`);
    const text = async () => (await page("Runtime.evaluate", { expression: "document.body.innerText", returnByValue: true })).result.value;
    const evaluate = async (expression) => (await page("Runtime.evaluate", { expression, returnByValue: true })).result.value;
    const loaded = () => b.waitFor((m) => m.sessionId === sessionId && m.method === "Page.loadEventFired", "page load");

    // 0. The detector itself: a console.error and an image that fails to load are caught
    // (then forgotten). A data: page, so that no favicon is asked of the servers.
    let load = loaded();
    const probe = `<p>probe</p><img src="${s1.url}/no-such-image.png"><script>console.error("detector probe")</script>`;
    await page("Page.navigate", { url: `data:text/html,${encodeURIComponent(probe)}` });
    await load;
    await b.waitFor(() => problems.some((p) => p.includes("detector probe")), "the probe console.error").catch(() => {});
    if (!problems.some((p) => p.includes("Failed to load resource")) || !problems.some((p) => p.includes("detector probe")))
        fail(`the error detector missed the probes: ${JSON.stringify(problems)}`);
    problems.length = 0;
    ok("a failed image load and a console.error are detected");

    // 1. The / page of browser-0: this load is visit 42 (the file held 41).
    load = loaded();
    await page("Page.navigate", { url: `${s0.url}/` });
    await load;
    let t = await text();
    if (!/Visit number 42\b/.test(t)) fail(`/ page text has no "Visit number 42": ${JSON.stringify(t)}`);
    if (!t.includes("Served by pod browser-0")) fail(`/ page text does not name the pod: ${JSON.stringify(t)}`);
    if ((await evaluate("document.title")) !== "Visit 42") fail(`/ page title: ${await evaluate("document.title")}`);
    ok(`/ shows "Visit number 42" served by pod browser-0`);

    // 2. Its link to /cluster, followed by a click: one bar per pod, the total on top.
    await waitJson(`${s0.url}/cluster`, (d) => d.total === 49, "browser-0 /cluster total 49");
    const href = await evaluate(`(document.querySelector('a[href="/cluster"]') || {}).href`);
    if (href !== `${s0.url}/cluster`) fail(`the / page has no link to /cluster (got ${href})`);
    load = loaded();
    await evaluate(`document.querySelector('a[href="/cluster"]').click()`);
    await load;
    if ((await evaluate("location.pathname")) !== "/cluster") fail(`the link led to ${await evaluate("location.href")}`);
    t = await text();
    const bars = () =>
        evaluate(`[...document.querySelectorAll(".pod")].map((p) => ({
            name: p.querySelector(".name").innerText,
            visits: p.querySelector(".visits").innerText,
            width: p.querySelector(".bar").getBoundingClientRect().width,
            track: p.querySelector(".track").getBoundingClientRect().width,
            stale: (p.querySelector(".stale") || {}).innerText || "" }))`);
    let rows = await bars();
    const shown = JSON.stringify(rows.map((r) => [r.name, r.visits, r.stale]));
    if (shown !== JSON.stringify([["browser-0", "42", ""], ["browser-1", "7", ""]])) fail(`/cluster bars ${JSON.stringify(rows)}`);
    // the bars are drawn to scale: the larger count fills its track, the other 7/42 of it
    if (Math.abs(rows[0].width - rows[0].track) > 1 || rows[0].track < 50) fail(`browser-0's bar is not full: ${JSON.stringify(rows[0])}`);
    if (Math.abs(rows[1].width / rows[1].track - 7 / 42) > 0.02) fail(`browser-1's bar is not to scale: ${JSON.stringify(rows[1])}`);
    if ((await evaluate(`document.querySelector("h1").innerText`)) !== "Cluster total: 49 visits") fail(`/cluster heading: ${JSON.stringify(t)}`);
    if ((await evaluate("document.title")) !== "Cluster: 49 visits") fail(`/cluster title: ${await evaluate("document.title")}`);
    if ((await evaluate(`document.querySelectorAll("script, link[rel=stylesheet], img").length`)) !== 0) fail("/cluster loads scripts, style sheets or images");
    await screenshot(page, "cluster.png");
    ok(`/cluster (from the link) shows one bar per pod, browser-0 42 and browser-1 7 to scale, total 49`);

    // 3. /cluster on browser-1 once browser-0 is gone: its count stays in the total, and its
    // bar is marked stale with its age.
    await stopServer(s0);
    await waitJson(`${s1.url}/cluster`, (d) => d.pods.some((p) => p.pod === "browser-0" && !p.answered), "browser-0 stale on browser-1");
    load = loaded();
    await page("Page.navigate", { url: `${s1.url}/cluster` });
    await load;
    t = await text();
    rows = await bars();
    if (!t.includes("Cluster total: 49 visits") || rows.length !== 2 || !/^stale: last answer \d+\.\d s ago$/.test(rows[0].stale) || rows[1].stale !== "")
        fail(`/cluster on browser-1 with browser-0 stopped: ${JSON.stringify(rows)} ${JSON.stringify(t)}`);
    await screenshot(page, "cluster-stale.png");
    ok(`/cluster on browser-1 with browser-0 stopped keeps the total 49 and marks browser-0 "${rows[0].stale}"`);

    if (problems.length) fail(`the browser reported:\n  ${problems.join("\n  ")}`);
    ok("no console errors, exceptions or failed loads");
    await b.send("Browser.close").catch(() => {});
    await withTimeout(b.exited, "chromium exit", 10000);
    await stopServer(s1);
    for (const s of [s0, s1]) if (/favicon/.test(readFileSync(s.log, "utf8"))) fail(`${s.name} was asked for a favicon`);
}

main().then(
    () => {
        cleanup();
        console.log("browser test passed");
    },
    (e) => fail(e.stack ?? String(e)),
);
