#!/usr/bin/env node
// Play a StatefulSet without a cluster: turn one ordinal of a rendered StatefulSet into
// the Pod the StatefulSet controller would create, for `podman kube play`.
//
//   node expand-statefulset.mjs RENDERED.yaml STS ORDINAL [--image IMG] [--host-port P]
//   node expand-statefulset.mjs RENDERED.yaml STS ORDINAL --claims
//
// The Pod is named STS-ORDINAL, carries the template's labels plus the controller's
// statefulset.kubernetes.io/pod-name and apps.kubernetes.io/pod-index, has hostname and
// subdomain (the governing Service) set, and mounts each volumeClaimTemplate T as the
// claim T-STS-ORDINAL (podman maps a claim to the named volume of that name, which the
// caller creates first: replaying a Pod whose claim volume already exists is fine, a
// PersistentVolumeClaim object is not). --image replaces every container's image;
// --host-port publishes the first container port on 127.0.0.1:P. --claims prints the
// claim names, one per line. Probes are left out (see below).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "deploy", "package.json"));
const YAML = require("yaml");

function die(msg) {
    console.error(`expand-statefulset: ${msg}`);
    process.exit(2);
}

const [file, stsName, ordinalArg, ...rest] = process.argv.slice(2);
if (!file || !stsName || !/^\d+$/.test(ordinalArg ?? "")) die("usage: RENDERED.yaml STS ORDINAL [--image IMG] [--host-port P] [--claims]");
const ordinal = Number(ordinalArg);
const opt = {};
for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--claims") opt.claims = true;
    else if (rest[i] === "--image") opt.image = rest[++i];
    else if (rest[i] === "--host-port") opt.hostPort = Number(rest[++i]);
    else die(`unknown option ${rest[i]}`);
}

const docs = YAML.parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS());
const sts = docs.find((o) => o?.kind === "StatefulSet" && o.metadata?.name === stsName);
if (!sts) die(`${file}: no StatefulSet ${stsName}`);
if (ordinal >= (sts.spec.replicas ?? 1)) die(`${stsName} has ${sts.spec.replicas ?? 1} replicas: no ordinal ${ordinal}`);

const podName = `${stsName}-${ordinal}`;
const claims = (sts.spec.volumeClaimTemplates ?? []).map((t) => ({ volume: t.metadata.name, claim: `${t.metadata.name}-${podName}` }));
if (opt.claims) {
    for (const c of claims) console.log(c.claim);
    process.exit(0);
}

const tpl = structuredClone(sts.spec.template);
const spec = tpl.spec;
spec.hostname = podName;
if (sts.spec.serviceName) spec.subdomain = sts.spec.serviceName;
spec.volumes = [...(spec.volumes ?? []), ...claims.map((c) => ({ name: c.volume, persistentVolumeClaim: { claimName: c.claim } }))];
for (const c of spec.containers) {
    if (opt.image) c.image = opt.image;
    // The caller plays the kubelet's probes itself (it polls the readiness path through
    // the published port): podman would turn a livenessProbe into a curl health check
    // run by systemd timers, with named ports resolved to 0.
    delete c.startupProbe;
    delete c.readinessProbe;
    delete c.livenessProbe;
}
if (opt.hostPort) {
    const p = spec.containers[0].ports?.[0];
    if (!p) die(`${stsName}: the first container has no port to publish`);
    p.hostPort = opt.hostPort;
    p.hostIP = "127.0.0.1";
}
const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
        name: podName,
        labels: { ...(tpl.metadata?.labels ?? {}), "statefulset.kubernetes.io/pod-name": podName, "apps.kubernetes.io/pod-index": String(ordinal) },
        annotations: tpl.metadata?.annotations ?? {},
    },
    spec,
};
process.stdout.write(YAML.stringify(pod));
