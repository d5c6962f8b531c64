#!/usr/bin/env node
// The alerting rules of deploy/components/monitoring/prometheusrule.yaml, checked with
// Prometheus' own tools (no cluster, no Operator):
//
//   check     the PrometheusRule's spec, written out as a plain rules file, passes
//             `promtool check rules` (PromQL parses, templates compile, no duplicates);
//   test      `promtool test rules TESTFILE` passes on that rules file: input series and
//             the alerts (labels and rendered annotations) expected at given times;
//   coverage  every alert of the rules has, in TESTFILE, at least one case where it fires
//             and one where it must not (exp_alerts empty), and the simple extraction the
//             integration test uses (the lines after `spec:`, dedented by 2) gives the
//             same rules as a YAML parser.
//
// Usage: node rules.mjs check|test|coverage --rules PROMETHEUSRULE [--tests TESTFILE]
//                       [--promtool BIN]
// TESTFILE names its rules file as `rule_files: [visits.rules.yaml]`; it is copied next
// to the extracted rules in a temporary directory. Exit status: 0 passed, 1 failed,
// 2 usage or environment error.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "package.json"));
const YAML = require("yaml");

function usage(msg) {
    console.error(`rules: ${msg}`);
    process.exit(2);
}

const opts = { promtool: "promtool" };
const mode = process.argv[2];
if (!["check", "test", "coverage"].includes(mode)) usage(`unknown mode ${mode ?? "(none)"}: check, test or coverage`);
for (let i = 3; i < process.argv.length; i++) {
    const a = process.argv[i];
    const val = () => {
        if (i + 1 >= process.argv.length) usage(`${a} needs a value`);
        return process.argv[++i];
    };
    if (a === "--rules") opts.rules = val();
    else if (a === "--tests") opts.tests = val();
    else if (a === "--promtool") opts.promtool = val();
    else usage(`unknown argument ${a}`);
}
if (!opts.rules) usage("--rules PROMETHEUSRULE is needed");
if (mode !== "check" && !opts.tests) usage(`${mode} needs --tests TESTFILE`);

const failures = [];
const fail = (msg) => failures.push(msg);

// The PrometheusRule and its spec (a plain rules file is exactly {groups: [...]}).
const text = readFileSync(opts.rules, "utf8");
const doc = YAML.parse(text);
if (doc?.kind !== "PrometheusRule") usage(`${opts.rules}: kind ${doc?.kind}, expected PrometheusRule`);
const spec = doc.spec;
if (!Array.isArray(spec?.groups)) usage(`${opts.rules}: spec.groups is not a list`);
const alerts = spec.groups.flatMap((g) => (g.rules ?? []).filter((r) => r.alert).map((r) => r.alert));

const tmp = mkdtempSync(join(tmpdir(), "visits-rules-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const rulesFile = join(tmp, "visits.rules.yaml");
writeFileSync(rulesFile, YAML.stringify(spec));

function promtool(args, cwd) {
    try {
        const out = execFileSync(opts.promtool, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        process.stdout.write(out);
        return true;
    } catch (e) {
        if (e.code === "ENOENT") usage(`${opts.promtool} not found (apt-get install prometheus)`);
        process.stdout.write(String(e.stdout ?? ""));
        fail(`promtool ${args.join(" ")} exited ${e.status}: ${String(e.stderr || e.stdout || e.message).trim()}`);
        return false;
    }
}

if (mode === "check") {
    if (alerts.length === 0) fail(`${opts.rules}: no alerting rule`);
    promtool(["check", "rules", rulesFile], tmp);
} else if (mode === "test") {
    const t = YAML.parse(readFileSync(opts.tests, "utf8"));
    const names = t?.rule_files ?? [];
    if (names.length !== 1 || names[0] !== "visits.rules.yaml")
        usage(`${opts.tests}: rule_files must be [visits.rules.yaml] (the extracted ${basename(opts.rules)}), got ${JSON.stringify(names)}`);
    const copy = join(tmp, basename(opts.tests));
    copyFileSync(opts.tests, copy);
    promtool(["test", "rules", copy], tmp);
} else {
    // Firing and not-firing cases per alert.
    const t = YAML.parse(readFileSync(opts.tests, "utf8"));
    const fires = new Map(alerts.map((a) => [a, 0]));
    const quiet = new Map(alerts.map((a) => [a, 0]));
    for (const [ti, tc] of (t?.tests ?? []).entries()) {
        for (const at of tc.alert_rule_test ?? []) {
            if (!fires.has(at.alertname)) {
                fail(`${opts.tests}: tests[${ti}] tests alert ${at.alertname}, which ${opts.rules} does not define`);
                continue;
            }
            const m = (at.exp_alerts ?? []).length > 0 ? fires : quiet;
            m.set(at.alertname, m.get(at.alertname) + 1);
        }
    }
    for (const a of alerts) {
        if (!fires.get(a)) fail(`${opts.tests}: no case where alert ${a} fires`);
        if (!quiet.get(a)) fail(`${opts.tests}: no case where alert ${a} must not fire (exp_alerts: [])`);
    }
    // tests/integration/test_prometheus.py reads the rules with no YAML parser: the lines
    // after a top-level `spec:`, each dedented by two spaces.
    const lines = text.split("\n");
    const at = lines.findIndex((l) => l === "spec:");
    if (at < 0) fail(`${opts.rules}: no top-level "spec:" line`);
    else {
        const rest = lines.slice(at + 1);
        const bad = rest.findIndex((l) => l.trim() !== "" && !l.startsWith("  "));
        if (bad >= 0) fail(`${opts.rules}:${at + 2 + bad}: not indented under spec: (the simple extraction would break)`);
        else {
            const simple = YAML.parse(rest.map((l) => l.slice(2)).join("\n"));
            if (JSON.stringify(simple) !== JSON.stringify(spec))
                fail(`${opts.rules}: the lines after "spec:" do not parse to spec`);
        }
    }
    for (const a of alerts) console.log(`${a}: fires in ${fires.get(a)} case(s), stays quiet in ${quiet.get(a)}`);
}

for (const f of failures) console.error(`FAIL ${f}`);
if (failures.length) {
    console.error(`rules ${mode}: ${failures.length} failure(s)`);
    process.exit(1);
}
console.log(`rules ${mode}: ${opts.rules}: ${alerts.length} alerts pass`);
