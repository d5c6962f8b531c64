#!/usr/bin/env node
// Offline checks of the Kustomize manifests in deploy/, with no cluster:
//
//   schema  every object validates against the Kubernetes OpenAPI schemas (types, required
//           fields, enums), through the kubernetes-models package;
//   fields  no unknown or misspelled field anywhere: each object is type-checked as a
//           TypeScript literal of its kubernetes-models interface (excess property checks);
//   cross   the objects mean something together: selectors match the pods, serviceName is
//           a headless Service, mounts match volumes and claim templates, probes, ports and
//           the Prometheus annotations name routes and the port visits-server really serves
//           (asked from the binary), the pod runs as the image's user, ...
//
// Usage: node check-manifests.mjs [options] KUSTOMIZATION_DIR
//   --server BIN        visits-server binary (--print-routes, --help); needed for "cross"
//   --dockerfile FILE   the Dockerfile whose final USER the pods must run as
//   --checks LIST       comma-separated subset of schema,fields,cross (default: all)
//   --expect K=V        an overlay's intent, repeatable: statefulsets=N, strategy=T,
//                       partition=last (only the highest ordinal updates), service-type=T,
//                       image-tag=TAG (every container image), selects=INSTANCE (the client
//                       Service "visits" selects that app.kubernetes.io/instance),
//                       dockerfile-version=V (the Dockerfile's ARG VERSION default),
//                       route-default=INSTANCE (the HTTPRoute's catch-all rule sends only
//                       to Services selecting that instance), route-header=NAME:VALUE>INSTANCE
//                       (the rule matching that header sends only to that instance),
//                       log-format=F (every container's --log-format / VISITS_LOG_FORMAT)
//   --runbooks FILE     the Markdown page every alert's runbook_url must point into
//                       (docs/operations.md): its anchor must be a heading of FILE
//   --expect-fail RE    invert: succeed only if some failure matches the regular expression
//                       (used by the deliberately broken manifests under broken/)
// Exit status: 0 all checks passed, 1 a check failed, 2 usage or environment error.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "package.json"));
const YAML = require("yaml");

function usage(msg) {
    console.error(`check-manifests: ${msg}`);
    process.exit(2);
}

// ---------------------------------------------------------------------------- options
const opts = { checks: new Set(["schema", "fields", "cross"]), expect: [], dir: null };
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    const val = () => {
        if (i + 1 >= process.argv.length) usage(`${a} needs a value`);
        return process.argv[++i];
    };
    if (a === "--server") opts.server = val();
    else if (a === "--dockerfile") opts.dockerfile = val();
    else if (a === "--checks") opts.checks = new Set(val().split(","));
    else if (a === "--expect") opts.expect.push(val());
    else if (a === "--expect-fail") opts.expectFail = new RegExp(val());
    else if (a === "--runbooks") opts.runbooks = val();
    else if (a.startsWith("-")) usage(`unknown option ${a}`);
    else if (opts.dir) usage("one kustomization directory only");
    else opts.dir = a;
}
if (!opts.dir) usage("no kustomization directory given");
for (const c of opts.checks)
    if (!["schema", "fields", "cross"].includes(c)) usage(`unknown check ${c}`);

const failures = [];
function fail(where, msg) {
    failures.push(`${where}: ${msg}`);
}

// ---------------------------------------------------------------------------- render
let rendered;
try {
    rendered = execFileSync("kubectl", ["kustomize", opts.dir], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, KUBECONFIG: "/dev/null" },
    });
} catch (e) {
    if (e.code === "ENOENT") usage("kubectl not found in PATH");
    fail("render", `kubectl kustomize ${opts.dir} failed: ${String(e.stderr || e.message).trim()}`);
}

const objs = [];
if (rendered !== undefined) {
    for (const doc of YAML.parseAllDocuments(rendered)) {
        if (doc.errors.length) fail("render", `YAML: ${doc.errors[0].message}`);
        const o = doc.toJS();
        if (o === null || o === undefined) continue;
        objs.push(o);
    }
    if (objs.length === 0) fail("render", `${opts.dir} renders no objects`);
}

const idOf = (o) => `${o?.kind ?? "?"}/${o?.metadata?.name ?? "?"}`;
const seen = new Set();
for (const o of objs) {
    if (seen.has(idOf(o))) fail(idOf(o), "defined twice");
    seen.add(idOf(o));
}

// Module path of the kubernetes-models class for an apiVersion/kind ("v1" is the core group).
// The Prometheus Operator's and the Gateway API's kinds come from their own packages.
const crdPackages = {
    "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
    "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
};
function modelPath(o) {
    if (typeof o.apiVersion !== "string" || typeof o.kind !== "string") return null;
    const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
    const dir = group ? `${group}/${version}` : version;
    const pkg = crdPackages[group] ?? "kubernetes-models";
    try {
        require.resolve(`${pkg}/${dir}/${o.kind}`);
        return `${pkg}/${dir}/${o.kind}`;
    } catch {
        return null;
    }
}

// ---------------------------------------------------------------------------- schema
if (opts.checks.has("schema")) {
    for (const o of objs) {
        const mp = modelPath(o);
        if (!mp) {
            fail(idOf(o), `no Kubernetes schema for apiVersion ${o.apiVersion} kind ${o.kind}`);
            continue;
        }
        const Model = require(mp)[o.kind];
        try {
            new Model(o).validate();
        } catch (e) {
            if (!Array.isArray(e.errors)) throw e;
            for (const err of e.errors) {
                const p = err.instancePath.replace(/^\//, "").replaceAll("/", ".") || "(object)";
                let detail = err.message;
                if (err.params?.allowedValues) detail += ` (${err.params.allowedValues.join(", ")})`;
                fail(idOf(o), `schema: ${p}: ${detail}`);
            }
        }
    }
}

// ---------------------------------------------------------------------------- fields
// Each object becomes `const o3: IStatefulSet = {...};` with one property per line; the
// line of a TypeScript diagnostic gives back the path of the offending field.
if (opts.checks.has("fields")) {
    const ts = require("typescript");
    const lines = [];
    const linePath = []; // per line: [object id, field path]
    const emit = (text, id, path) => {
        lines.push(text);
        linePath.push([id, path]);
    };
    const literal = (v, id, path, indent) => {
        const pad = "  ".repeat(indent);
        if (Array.isArray(v)) {
            emit("[", id, path);
            v.forEach((x, i) => {
                const p = `${path}[${i}]`;
                const n = lines.length;
                literal(x, id, p, indent + 1);
                lines[n] = pad + "  " + lines[n];
                lines[lines.length - 1] += ",";
            });
            emit(pad + "]", id, path);
        } else if (v !== null && typeof v === "object") {
            emit("{", id, path);
            for (const [k, x] of Object.entries(v)) {
                const p = path ? `${path}.${k}` : k;
                const n = lines.length;
                literal(x, id, p, indent + 1);
                lines[n] = `${pad}  ${JSON.stringify(k)}: ${lines[n]}`;
                lines[lines.length - 1] += ",";
            }
            emit(pad + "}", id, path);
        } else {
            emit(JSON.stringify(v), id, path);
        }
    };
    objs.forEach((o, i) => {
        const mp = modelPath(o);
        if (!mp) return; // reported by the schema check
        const file = require.resolve(mp).replace(/\.js$/, "");
        emit(`import type { I${o.kind} as T${i} } from ${JSON.stringify(file)};`, idOf(o), "");
    });
    objs.forEach((o, i) => {
        if (!modelPath(o)) return;
        const n = lines.length;
        literal(o, idOf(o), "", 0);
        lines[n] = `export const o${i}: T${i} = ${lines[n]}`;
        lines[lines.length - 1] += ";";
    });
    const tmp = mkdtempSync(join(tmpdir(), "visits-fields-"));
    try {
        const src = join(tmp, "objects.ts");
        writeFileSync(src, lines.join("\n") + "\n");
        const program = ts.createProgram([src], {
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: [],
            lib: ["lib.es2020.d.ts"],
            target: ts.ScriptTarget.ES2020,
            module: ts.ModuleKind.CommonJS,
            moduleResolution: ts.ModuleResolutionKind.Node10,
        });
        for (const d of ts.getPreEmitDiagnostics(program)) {
            const msg = ts.flattenDiagnosticMessageText(d.messageText, " ");
            if (d.file && resolve(d.file.fileName) === resolve(src)) {
                const { line } = d.file.getLineAndCharacterOfPosition(d.start);
                const [id, path] = linePath[line] ?? ["?", ""];
                fail(id, `fields: ${path || "(object)"}: ${msg}`);
            } else {
                fail("fields", `TypeScript: ${msg}`);
            }
        }
    } finally {
        rmSync(tmp, { recursive: true, force: true });
    }
}

// ---------------------------------------------------------------------------- cross
// What the server binary says about itself.
function askServer() {
    if (!opts.server) usage("--server BIN is needed for the cross-object checks");
    const run = (args) => {
        try {
            return execFileSync(opts.server, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10000 });
        } catch (e) {
            usage(`${opts.server} ${args.join(" ")} failed: ${String(e.stderr || e.message).trim()}`);
        }
    };
    const routes = [];
    for (const line of run(["--print-routes"]).split("\n")) {
        if (!line.trim()) continue;
        const m = line.match(/^(\/\S*)\s+([A-Z,]+)\s+(.*)$/);
        if (!m) usage(`cannot parse a --print-routes line: ${JSON.stringify(line)}`);
        routes.push({ path: m[1], methods: m[2].split(","), purpose: m[3].trim() });
    }
    if (routes.length === 0) usage(`${opts.server} --print-routes printed no routes`);
    // Defaults of the settings the manifests rely on, from the --help text.
    const help = run(["--help"]);
    const dflt = (flag, re) => {
        const line = help.split("\n").find((l) => l.includes(flag));
        const m = line && line.match(re);
        return m ? m[1] : undefined;
    };
    // Why the server refuses a setting ("" if it takes it): the flags are checked in order,
    // before --print-routes ends the run.
    const refuses = (args) => {
        try {
            execFileSync(opts.server, [...args, "--print-routes"], { stdio: ["ignore", "ignore", "pipe"], timeout: 10000 });
            return "";
        } catch (e) {
            return String(e.stderr || e.message).trim();
        }
    };
    return {
        routes,
        refuses,
        defaultPort: dflt("--port", /default:?\s*(\d+)/i),
        defaultDataDir: dflt("--data-dir", /default:?\s*(\/[^\s,)]*)/i),
    };
}

// Label selector semantics: a Service's plain map or a LabelSelector.
function selects(sel, labels) {
    labels = labels || {};
    const ml = sel?.matchLabels ?? (sel?.matchExpressions ? {} : sel) ?? {};
    for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
    for (const e of sel?.matchExpressions ?? []) {
        const has = Object.hasOwn(labels, e.key);
        if (e.operator === "In" && !(has && e.values.includes(labels[e.key]))) return false;
        if (e.operator === "NotIn" && has && e.values.includes(labels[e.key])) return false;
        if (e.operator === "Exists" && !has) return false;
        if (e.operator === "DoesNotExist" && has) return false;
    }
    return true;
}
const selectorEmpty = (sel) =>
    !sel || (Object.keys(sel.matchLabels ?? (sel.matchExpressions ? {} : sel)).length === 0 && !(sel.matchExpressions ?? []).length);

// The image's user from the final stage of the Dockerfile ("USER uid[:gid]").
function imageUser() {
    if (!opts.dockerfile) usage("--dockerfile FILE is needed for the cross-object checks");
    let user;
    for (const line of readFileSync(opts.dockerfile, "utf8").split("\n")) {
        if (/^\s*FROM\s/i.test(line)) user = undefined;
        const m = line.match(/^\s*USER\s+(\S+)/i);
        if (m) user = m[1];
    }
    if (!user) usage(`${opts.dockerfile}: the final stage has no USER`);
    const [uid, gid] = user.split(":");
    if (!/^\d+$/.test(uid) || (gid !== undefined && !/^\d+$/.test(gid)))
        usage(`${opts.dockerfile}: USER ${user} is not numeric (Kubernetes runAsNonRoot needs a numeric uid)`);
    return { uid: Number(uid), gid: gid === undefined ? undefined : Number(gid) };
}

// A server setting as the container sets it: --flag=V / --flag V in args, else env, else default.
function setting(c, flag, env, dflt) {
    const args = c.args ?? [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === flag && i + 1 < args.length) return { value: args[i + 1], from: `args ${flag}` };
        if (args[i].startsWith(flag + "=")) return { value: args[i].slice(flag.length + 1), from: `args ${flag}` };
    }
    const e = (c.env ?? []).find((x) => x.name === env);
    if (e) return e.valueFrom ? { value: undefined, from: `env ${env} (valueFrom)` } : { value: e.value, from: `env ${env}` };
    return { value: dflt, from: `the server's default` };
}

// VISITS_PEERS_DNS (or --peers-dns) NAME:PORT of a StatefulSet's server: NAME is its
// governing headless Service (alone or followed by .namespace...), whose DNS lists every
// pod's own address, so PORT is the server's port (a headless Service maps no ports).
function checkPeersDns(w, c, cid, serverPort, services) {
    const peers = setting(c, "--peers-dns", "VISITS_PEERS_DNS", undefined);
    if (peers.value === undefined) {
        if (peers.from.includes("valueFrom")) fail(cid, `cannot tell VISITS_PEERS_DNS (from ${peers.from})`);
        else if ((w.spec.replicas ?? 1) > 1)
            fail(cid, `no VISITS_PEERS_DNS: GET /cluster would show each pod alone (set it to ${w.spec.serviceName}:${serverPort})`);
        return;
    }
    const m = String(peers.value).match(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)((\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*):(\d+)$/);
    if (!m) {
        fail(cid, `VISITS_PEERS_DNS ${peers.value} (${peers.from}) is not NAME:PORT`);
        return;
    }
    const [name, port] = [m[1], Number(m[6])];
    const svc = services.find((s) => s.metadata?.name === name);
    if (name !== w.spec.serviceName)
        fail(cid, `VISITS_PEERS_DNS ${peers.value} names Service ${name}, not the governing headless Service ${w.spec.serviceName}: /cluster would miss pods`);
    else if (!svc) fail(cid, `VISITS_PEERS_DNS ${peers.value}: no Service ${name}`);
    if (port !== serverPort)
        fail(cid, `VISITS_PEERS_DNS port ${port} is not the server's port ${serverPort}: a headless Service's DNS gives pod addresses, so the peers are asked on the container port`);
}

function workloads() {
    return objs.filter((o) => ["StatefulSet", "Deployment", "DaemonSet", "ReplicaSet"].includes(o.kind) && o.spec?.template);
}

function crossChecks() {
    const server = askServer();
    const user = imageUser();
    const services = objs.filter((o) => o.kind === "Service");
    const wls = workloads();
    if (wls.length === 0) fail("cross", "no workload (StatefulSet) rendered");
    const routeFor = (path) => server.routes.find((r) => r.path === path);

    for (const w of wls) {
        const id = idOf(w);
        const tpl = w.spec.template;
        const labels = tpl.metadata?.labels ?? {};
        const pod = tpl.spec ?? {};
        if (selectorEmpty(w.spec.selector)) fail(id, "spec.selector is empty");
        else if (!selects(w.spec.selector, labels))
            fail(id, `spec.selector ${JSON.stringify(w.spec.selector)} does not match the pod template labels ${JSON.stringify(labels)}`);

        if (w.kind === "StatefulSet") {
            const svc = services.find((s) => s.metadata?.name === w.spec.serviceName);
            if (!w.spec.serviceName) fail(id, "spec.serviceName is not set");
            else if (!svc) fail(id, `spec.serviceName ${w.spec.serviceName}: no such Service in the rendered objects`);
            else {
                if (svc.spec?.clusterIP !== "None")
                    fail(id, `spec.serviceName ${w.spec.serviceName} is not a headless Service (clusterIP must be None)`);
                if (svc.spec?.publishNotReadyAddresses !== true)
                    fail(id, `headless Service ${w.spec.serviceName} must set publishNotReadyAddresses: true (pods find peers while starting)`);
                if (!svc.spec?.selector || !selects(svc.spec.selector, labels))
                    fail(id, `headless Service ${w.spec.serviceName} does not select this StatefulSet's pods`);
            }
            const us = w.spec.updateStrategy ?? {};
            if (us.type === "OnDelete" && us.rollingUpdate)
                fail(id, "spec.updateStrategy.rollingUpdate is only allowed with type RollingUpdate");
            const part = us.rollingUpdate?.partition ?? 0;
            if (part > (w.spec.replicas ?? 1))
                fail(id, `spec.updateStrategy.rollingUpdate.partition ${part} > replicas: no pod would ever update`);
        }

        // Anti-affinity only spreads pods if its selector matches the pods themselves.
        const aa = pod.affinity?.podAntiAffinity;
        for (const t of [
            ...(aa?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p) => p.podAffinityTerm),
            ...(aa?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
        ])
            if (!t?.labelSelector || !selects(t.labelSelector, labels))
                fail(id, "podAntiAffinity labelSelector does not match the pod's own labels: it would not spread the pods");

        // Volumes: every mount has a volume or claim template, every claim template is mounted.
        const claimNames = new Set((w.spec.volumeClaimTemplates ?? []).map((v) => v.metadata?.name));
        const volNames = new Set((pod.volumes ?? []).map((v) => v.name));
        for (const n of claimNames) if (volNames.has(n)) fail(id, `volume ${n} is both a pod volume and a claim template`);
        const mounted = new Set();
        const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
        for (const c of containers) {
            const cid = `${id} container ${c.name}`;
            const paths = new Set();
            for (const m of c.volumeMounts ?? []) {
                mounted.add(m.name);
                if (!claimNames.has(m.name) && !volNames.has(m.name))
                    fail(cid, `volumeMount ${m.name} (${m.mountPath}) has no matching volume or volumeClaimTemplate`);
                if (paths.has(m.mountPath)) fail(cid, `two volumeMounts at ${m.mountPath}`);
                paths.add(m.mountPath);
            }
            for (const e of c.env ?? []) {
                const rf = e.valueFrom?.resourceFieldRef;
                if (rf?.containerName && !containers.some((x) => x.name === rf.containerName))
                    fail(cid, `env ${e.name}: resourceFieldRef names no container ${rf.containerName}`);
            }
        }
        for (const n of claimNames) if (!mounted.has(n)) fail(id, `volumeClaimTemplate ${n} is mounted by no container`);
        for (const n of volNames) if (!mounted.has(n)) fail(id, `volume ${n} is mounted by no container`);

        // The pod runs as the image's user.
        const psc = pod.securityContext ?? {};
        for (const c of pod.containers ?? []) {
            const cid = `${id} container ${c.name}`;
            const csc = c.securityContext ?? {};
            const uid = csc.runAsUser ?? psc.runAsUser ?? user.uid;
            const gid = csc.runAsGroup ?? psc.runAsGroup ?? user.gid;
            if (uid !== user.uid) fail(cid, `runs as uid ${uid} but the image's user is ${user.uid} (${opts.dockerfile})`);
            if (user.gid !== undefined && gid !== user.gid)
                fail(cid, `runs as gid ${gid} but the image's group is ${user.gid} (${opts.dockerfile})`);
            if (user.gid !== undefined && psc.fsGroup !== user.gid)
                fail(id, `securityContext.fsGroup ${psc.fsGroup} is not the image's group ${user.gid}: the volume would not be writable`);
            if ((csc.runAsNonRoot ?? psc.runAsNonRoot) !== true) fail(cid, "runAsNonRoot is not true");
            if (csc.readOnlyRootFilesystem !== true) fail(cid, "readOnlyRootFilesystem is not true");
            if (csc.allowPrivilegeEscalation !== false) fail(cid, "allowPrivilegeEscalation is not false");
            if (!(csc.capabilities?.drop ?? []).includes("ALL")) fail(cid, "capabilities.drop does not include ALL");
            if ((csc.seccompProfile ?? psc.seccompProfile)?.type !== "RuntimeDefault")
                fail(cid, "seccompProfile is not RuntimeDefault");
            const res = c.resources ?? {};
            if (!res.requests?.memory || !res.limits?.memory) fail(cid, "no memory request and limit");

            // Where the server listens and keeps its count, as this container configures it.
            if (c.command && !/(^|\/)visits-server$/.test(c.command[0] ?? ""))
                fail(cid, `command ${JSON.stringify(c.command)} does not run visits-server`);
            const port = setting(c, "--port", "PORT", server.defaultPort);
            if (port.value === undefined || !/^\d+$/.test(String(port.value))) {
                fail(cid, `cannot tell the server's port (from ${port.from})`);
                continue;
            }
            const serverPort = Number(port.value);
            const ports = c.ports ?? [];
            const resolvePort = (p) => (typeof p === "number" ? p : ports.find((x) => x.name === p)?.containerPort);
            for (const p of ports)
                if (p.containerPort !== serverPort)
                    fail(cid, `containerPort ${p.name ?? ""} ${p.containerPort}: the server listens on ${serverPort} (${port.from})`);

            const dataDir = setting(c, "--data-dir", "VISITS_DATA_DIR", server.defaultDataDir);
            if (!dataDir.value) fail(cid, `cannot tell the server's data directory (from ${dataDir.from})`);
            else {
                const m = (c.volumeMounts ?? []).find((x) => dataDir.value === x.mountPath || dataDir.value.startsWith(x.mountPath.replace(/\/$/, "") + "/"));
                if (!m) fail(cid, `the data directory ${dataDir.value} (${dataDir.from}) is on no volumeMount: counts would be lost`);
                else if (!claimNames.has(m.name))
                    fail(cid, `the data directory ${dataDir.value} is on volume ${m.name}, not on a volumeClaimTemplate: counts would not persist`);
                else if (m.readOnly) fail(cid, `the data directory ${dataDir.value} is mounted readOnly`);
            }
            // The log format is one the server takes (else it exits 2 at every start).
            const logFormat = setting(c, "--log-format", "VISITS_LOG_FORMAT", "text");
            if (logFormat.value === undefined) fail(cid, `cannot tell the log format (from ${logFormat.from})`);
            else {
                const why = server.refuses(["--log-format", String(logFormat.value)]);
                if (why) fail(cid, `log format ${logFormat.value} (${logFormat.from}) is refused by visits-server: ${why}`);
            }
            // GET /cluster finds the other pods through the governing headless Service.
            if (w.kind === "StatefulSet") checkPeersDns(w, c, cid, serverPort, services);

            const podName = (c.env ?? []).find((e) => e.name === "POD_NAME");
            if (podName?.valueFrom?.fieldRef?.fieldPath !== "metadata.name")
                fail(cid, "POD_NAME does not come from the downward API (fieldRef metadata.name)");

            // Probes: paths the server serves for that purpose, on the server's port.
            const probeWants = { startupProbe: /readiness/, readinessProbe: /readiness/, livenessProbe: /liveness/ };
            for (const [kind, purpose] of Object.entries(probeWants)) {
                const pr = c[kind];
                if (!pr) {
                    fail(cid, `no ${kind}`);
                    continue;
                }
                if (!pr.httpGet) {
                    fail(cid, `${kind} is not an httpGet probe`);
                    continue;
                }
                const r = routeFor(pr.httpGet.path);
                if (!r) fail(cid, `${kind} path ${pr.httpGet.path} is not a route of visits-server (${server.routes.map((x) => x.path).join(" ")})`);
                else {
                    if (!r.methods.includes("GET")) fail(cid, `${kind} path ${r.path} does not accept GET`);
                    if (!purpose.test(r.purpose))
                        fail(cid, `${kind} path ${r.path} is the server's "${r.purpose}" route, not its ${purpose.source} route`);
                }
                const pp = resolvePort(pr.httpGet.port);
                if (pp === undefined) fail(cid, `${kind} port ${pr.httpGet.port} is not a port of the container`);
                else if (pp !== serverPort) fail(cid, `${kind} port ${pr.httpGet.port} (${pp}) is not the server's port ${serverPort}`);
            }

            // Prometheus scrape annotations.
            const ann = tpl.metadata?.annotations ?? {};
            if (ann["prometheus.io/scrape"] === "true") {
                const mpath = ann["prometheus.io/path"] ?? "/metrics";
                const r = routeFor(mpath);
                if (!r || !/metric|prometheus/i.test(r.purpose))
                    fail(id, `prometheus.io/path ${mpath} is not the server's metrics route`);
                const mport = Number(ann["prometheus.io/port"]);
                if (mport !== serverPort) fail(id, `prometheus.io/port ${ann["prometheus.io/port"]} is not the server's port ${serverPort}`);
            } else fail(id, "pod template has no prometheus.io/scrape: \"true\" annotation");
        }
    }

    // Services and budgets must select pods, and Service ports must reach a container port.
    const podsOf = (sel) => wls.filter((w) => selects(sel, w.spec.template.metadata?.labels));
    for (const s of services) {
        const id = idOf(s);
        if (selectorEmpty(s.spec?.selector)) {
            fail(id, "has no selector");
            continue;
        }
        const sel = podsOf(s.spec.selector);
        if (sel.length === 0) {
            fail(id, `selector ${JSON.stringify(s.spec.selector)} matches no pod template`);
            continue;
        }
        for (const p of s.spec.ports ?? []) {
            const tp = p.targetPort ?? p.port;
            for (const w of sel) {
                const cs = w.spec.template.spec.containers ?? [];
                const ok = cs.some((c) => (c.ports ?? []).some((cp) => (typeof tp === "number" ? cp.containerPort === tp : cp.name === tp)));
                if (!ok) fail(id, `port ${p.name ?? p.port}: targetPort ${tp} is no container port of ${idOf(w)}`);
            }
        }
    }
    for (const b of objs.filter((o) => o.kind === "PodDisruptionBudget")) {
        if (selectorEmpty(b.spec?.selector)) fail(idOf(b), "has no selector");
        else if (podsOf(b.spec.selector).length === 0) fail(idOf(b), "selector matches no pod template");
    }
    for (const w of wls.filter((x) => x.kind === "StatefulSet"))
        if (!objs.some((b) => b.kind === "PodDisruptionBudget" && !selectorEmpty(b.spec?.selector) && selects(b.spec.selector, w.spec.template.metadata?.labels)))
            fail(idOf(w), "no PodDisruptionBudget covers its pods");

    monitoringChecks(server, wls, podsOf);
    httpRouteChecks(services);
}

// GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to "-".
function headingAnchors(file) {
    const anchors = new Set();
    let fence = false;
    let text;
    try {
        text = readFileSync(file, "utf8");
    } catch (e) {
        usage(`cannot read the runbook page ${file}: ${e.message}`);
    }
    for (const line of text.split("\n")) {
        if (/^\s*(```|~~~)/.test(line)) fence = !fence;
        const m = !fence && line.match(/^#{1,6}\s+(.*?)\s*#*\s*$/);
        if (m) anchors.add(m[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-"));
    }
    return anchors;
}

// PodMonitor: it must select the pods, by a port name they have, on the metrics route; the
// job name it gives must be the one the alerting rules select. PrometheusRule: each alert
// has a severity, a summary, a description naming the pod and the value, and a runbook_url
// into a section of the runbook page that exists.
function monitoringChecks(server, wls, podsOf) {
    const rules = objs.filter((o) => o.kind === "PrometheusRule");
    const ruleJobs = new Set();
    let anchors;
    for (const r of rules) {
        const id = idOf(r);
        for (const g of r.spec?.groups ?? [])
            for (const rule of g.rules ?? []) {
                for (const m of String(rule.expr ?? "").matchAll(/\bjob\s*=\s*"([^"]*)"/g)) ruleJobs.add(m[1]);
                if (!rule.alert) continue;
                const aid = `${id}: alert ${rule.alert}`;
                const ann = rule.annotations ?? {};
                if (!["critical", "warning", "info"].includes(rule.labels?.severity))
                    fail(aid, `labels.severity ${rule.labels?.severity} is not critical, warning or info`);
                for (const k of ["summary", "description", "runbook_url"]) if (!ann[k]) fail(aid, `no ${k} annotation`);
                const absent = /^\s*absent(_over_time)?\s*\(/.test(String(rule.expr));
                if (ann.description && !absent && !/\$labels\.pod\b/.test(ann.description))
                    fail(aid, "description does not name the pod ($labels.pod)");
                if (ann.description && !/\$value\b/.test(ann.description)) fail(aid, "description does not give the value ($value)");
                if (ann.runbook_url) {
                    if (!opts.runbooks) usage("--runbooks FILE is needed to check runbook_url");
                    anchors ??= headingAnchors(opts.runbooks);
                    const page = opts.runbooks.split("/").slice(-2).join("/");
                    const m = String(ann.runbook_url).match(/^https?:\/\/[^#\s]+\/([^/#\s]+\/[^/#\s]+)#([^#\s]+)$/);
                    if (!m || m[1] !== page) fail(aid, `runbook_url ${ann.runbook_url} does not point into ${page}#SECTION`);
                    else if (!anchors.has(m[2])) fail(aid, `runbook_url ${ann.runbook_url}: no section #${m[2]} in ${opts.runbooks}`);
                    else if (m[2] !== rule.alert.toLowerCase())
                        fail(aid, `runbook_url anchor #${m[2]} is not the alert's own section #${rule.alert.toLowerCase()}`);
                }
            }
    }
    const metricsRoute = server.routes.find((x) => /metric|prometheus/i.test(x.purpose));
    for (const pm of objs.filter((o) => o.kind === "PodMonitor")) {
        const id = idOf(pm);
        const sel = pm.spec?.selector;
        if (selectorEmpty(sel)) {
            fail(id, "has no selector: it would scrape every pod of the namespace");
            continue;
        }
        const pods = podsOf(sel);
        if (pods.length === 0) {
            fail(id, `selector ${JSON.stringify(sel)} matches no pod template`);
            continue;
        }
        const eps = pm.spec.podMetricsEndpoints ?? [];
        if (eps.length === 0) fail(id, "no podMetricsEndpoints");
        eps.forEach((ep, i) => {
            const eid = `podMetricsEndpoints[${i}]`;
            if (ep.port === undefined) fail(id, `${eid} has no port (name the container port${ep.targetPort !== undefined ? "; targetPort is deprecated" : ""})`);
            else
                for (const w of pods) {
                    const cs = w.spec.template.spec?.containers ?? [];
                    if (!cs.some((c) => (c.ports ?? []).some((cp) => cp.name === ep.port)))
                        fail(id, `${eid}.port ${ep.port} is no container port of ${idOf(w)} (${cs.flatMap((c) => (c.ports ?? []).map((p) => p.name)).join(" ")})`);
                }
            const path = ep.path ?? "/metrics";
            if (!metricsRoute || path !== metricsRoute.path) fail(id, `${eid}.path ${path} is not the server's metrics route (${metricsRoute?.path})`);
            if ((ep.scheme ?? "http") !== "http") fail(id, `${eid}.scheme ${ep.scheme}: visits-server serves plain HTTP`);
        });
        for (const w of pods) {
            const labels = w.spec.template.metadata?.labels ?? {};
            for (const l of [...(pm.spec.jobLabel ? [pm.spec.jobLabel] : []), ...(pm.spec.podTargetLabels ?? [])])
                if (!Object.hasOwn(labels, l)) fail(id, `label ${l} (jobLabel/podTargetLabels) is not on the pods of ${idOf(w)}`);
            // The Operator names the job after the pods' jobLabel value, else NAMESPACE/NAME.
            const job = pm.spec.jobLabel && labels[pm.spec.jobLabel] ? labels[pm.spec.jobLabel] : `${pm.metadata?.namespace ?? "NAMESPACE"}/${pm.metadata?.name}`;
            for (const j of ruleJobs)
                if (j !== job) fail(id, `the alerting rules select job="${j}", but this PodMonitor gives the pods of ${idOf(w)} job="${job}"`);
        }
    }
    if (rules.length && ruleJobs.size && !objs.some((o) => o.kind === "PodMonitor"))
        fail(idOf(rules[0]), `the rules select job="${[...ruleJobs].join(",")}" but no PodMonitor scrapes the pods`);
}

// HTTPRoute: attached to a Gateway (the cluster's own; none is shipped), and every
// backendRef names a Service of these manifests and one of its ports.
function httpRouteChecks(services) {
    for (const r of objs.filter((o) => o.kind === "HTTPRoute")) {
        const id = idOf(r);
        const parents = r.spec?.parentRefs ?? [];
        if (parents.length === 0) fail(id, "no parentRefs: the route is attached to no Gateway and serves nothing");
        for (const p of parents)
            if ((p.group ?? "gateway.networking.k8s.io") !== "gateway.networking.k8s.io" || (p.kind ?? "Gateway") !== "Gateway")
                fail(id, `parentRef ${p.name} is a ${p.group}/${p.kind}, not a Gateway`);
        (r.spec?.rules ?? []).forEach((rule, i) => {
            const refs = rule.backendRefs ?? [];
            if (refs.length === 0) fail(id, `rules[${i}] has no backendRefs`);
            refs.forEach((b, j) => {
                const bid = `rules[${i}].backendRefs[${j}]`;
                if ((b.group ?? "") !== "" || (b.kind ?? "Service") !== "Service") {
                    fail(id, `${bid} ${b.name} is a ${b.group}/${b.kind}, not a Service`);
                    return;
                }
                if (b.namespace && b.namespace !== r.metadata?.namespace) fail(id, `${bid} ${b.name} is in another namespace (${b.namespace}): needs a ReferenceGrant`);
                const svc = services.find((x) => x.metadata?.name === b.name);
                if (!svc) {
                    fail(id, `${bid}: no Service ${b.name} in the rendered objects (${services.map((x) => x.metadata?.name).join(" ")})`);
                    return;
                }
                if (b.port === undefined) fail(id, `${bid} ${b.name} has no port`);
                else if (!(svc.spec?.ports ?? []).some((p) => p.port === b.port))
                    fail(id, `${bid}: port ${b.port} is not a port of Service ${b.name} (${(svc.spec?.ports ?? []).map((p) => p.port).join(" ")})`);
                if (svc.spec?.clusterIP === "None") fail(id, `${bid}: Service ${b.name} is headless`);
            });
        });
    }
}

// The instances (app.kubernetes.io/instance) an HTTPRoute rule's backends select.
function ruleInstances(rule) {
    const out = new Set();
    for (const b of rule.backendRefs ?? []) {
        const svc = objs.find((o) => o.kind === "Service" && o.metadata?.name === b.name);
        out.add(svc?.spec?.selector?.["app.kubernetes.io/instance"] ?? `(Service ${b.name})`);
    }
    return [...out];
}

// An overlay's intent, so that a patch that silently stopped applying is noticed.
function expectations() {
    const stss = objs.filter((o) => o.kind === "StatefulSet");
    const routeRules = objs.filter((o) => o.kind === "HTTPRoute").flatMap((r) => r.spec?.rules ?? []);
    for (const e of opts.expect) {
        const k = e.slice(0, e.indexOf("=") < 0 ? e.length : e.indexOf("="));
        const v = e.slice(k.length + 1);
        if (k === "statefulsets") {
            if (stss.length !== Number(v)) fail("expect", `${stss.length} StatefulSets rendered, expected ${v}`);
        } else if (k === "strategy") {
            for (const s of stss)
                if ((s.spec.updateStrategy?.type ?? "RollingUpdate") !== v)
                    fail(idOf(s), `updateStrategy ${s.spec.updateStrategy?.type}, expected ${v}`);
        } else if (k === "partition") {
            for (const s of stss) {
                const want = v === "last" ? (s.spec.replicas ?? 1) - 1 : Number(v);
                const got = s.spec.updateStrategy?.rollingUpdate?.partition ?? 0;
                if (got !== want || want < 1) fail(idOf(s), `partition ${got}, expected ${want} (only the highest ordinal updates)`);
            }
        } else if (k === "service-type") {
            const s = objs.find((o) => o.kind === "Service" && o.metadata?.name === "visits");
            if ((s?.spec?.type ?? "ClusterIP") !== v) fail("Service/visits", `type ${s?.spec?.type}, expected ${v}`);
        } else if (k === "image-tag") {
            for (const w of workloads())
                for (const c of w.spec.template.spec.containers ?? [])
                    if (!String(c.image).endsWith(`:${v}`)) fail(idOf(w), `image ${c.image}, expected tag ${v}`);
        } else if (k === "selects") {
            const s = objs.find((o) => o.kind === "Service" && o.metadata?.name === "visits");
            if (s?.spec?.selector?.["app.kubernetes.io/instance"] !== v)
                fail("Service/visits", `selects instance ${s?.spec?.selector?.["app.kubernetes.io/instance"]}, expected ${v}`);
        } else if (k === "log-format") {
            for (const w of workloads())
                for (const c of w.spec.template.spec.containers ?? []) {
                    const got = setting(c, "--log-format", "VISITS_LOG_FORMAT", "text");
                    if (got.value !== v) fail(`${idOf(w)} container ${c.name}`, `log format ${got.value} (${got.from}), expected ${v}`);
                }
        } else if (k === "dockerfile-version") {
            if (!opts.dockerfile) usage("--expect dockerfile-version needs --dockerfile");
            const m = readFileSync(opts.dockerfile, "utf8").match(/^\s*ARG\s+VERSION=(\S+)/m);
            if (m?.[1] !== v) fail(opts.dockerfile, `ARG VERSION=${m?.[1]}, expected the project version ${v}`);
        } else if (k === "route-default") {
            const all = routeRules.filter((r) => !(r.matches ?? []).some((m) => m.headers || m.queryParams || m.method || (m.path && m.path.value !== "/")));
            if (all.length === 0) fail("HTTPRoute", "no catch-all rule (without header, query or method match)");
            for (const r of all) {
                const got = ruleInstances(r);
                if (got.length !== 1 || got[0] !== v) fail("HTTPRoute", `the catch-all rule sends to ${got.join(", ")}, expected only ${v}`);
            }
        } else if (k === "route-header") {
            const m = v.match(/^([^:]+):([^>]*)>(.+)$/);
            if (!m) usage(`route-header wants NAME:VALUE>INSTANCE, got ${v}`);
            const hits = routeRules.filter((r) =>
                (r.matches ?? []).some((x) => (x.headers ?? []).some((h) => h.name.toLowerCase() === m[1].toLowerCase() && h.value === m[2] && (h.type ?? "Exact") === "Exact")));
            if (hits.length === 0) fail("HTTPRoute", `no rule matches the header ${m[1]}: ${m[2]}`);
            for (const r of hits) {
                const got = ruleInstances(r);
                if (got.length !== 1 || got[0] !== m[3]) fail("HTTPRoute", `the rule for ${m[1]}: ${m[2]} sends to ${got.join(", ")}, expected only ${m[3]}`);
            }
        } else usage(`unknown expectation ${e}`);
    }
}

if (opts.checks.has("cross") && objs.length) {
    crossChecks();
    expectations();
}

// ---------------------------------------------------------------------------- verdict
const checks = [...opts.checks].join(",");
if (opts.expectFail) {
    const hit = failures.filter((f) => opts.expectFail.test(f));
    for (const f of failures) console.log(`${hit.includes(f) ? "expected" : "also"}: ${f}`);
    if (hit.length === 0) {
        console.error(`check-manifests: ${opts.dir}: no failure matches /${opts.expectFail.source}/ (${failures.length} other failures): the check did not catch the breakage`);
        process.exit(1);
    }
    console.log(`check-manifests: ${opts.dir}: broken as expected (${hit.length} matching failure(s))`);
    process.exit(0);
}
for (const f of failures) console.error(`FAIL ${f}`);
if (failures.length) {
    console.error(`check-manifests: ${opts.dir}: ${failures.length} failure(s) in ${checks}`);
    process.exit(1);
}
console.log(`check-manifests: ${opts.dir}: ${objs.length} objects pass ${checks}`);
