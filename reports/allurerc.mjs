// Allure 3 configuration of `make report`: one HTML file that opens from disk, history kept between runs.
//
// The run's identity and verdict come from the conformance report the run wrote
// (fixtures/conformance.py); the failure categories from the categories.json the run wrote
// into the results folder (fixtures/outcomes.py), the same file Allure 2 reads. Paths are
// relative to the repository (this file's parent folder) and can be overridden:
//   EASTWEST_ALLURE_RESULTS      the results folder          (reports/allure-results)
//   EASTWEST_CONFORMANCE_REPORT  the conformance report      (reports/conformance-report.json)
//   EASTWEST_ALLURE_REPORT       the output folder           (reports/allure-report)
//   EASTWEST_ALLURE_HISTORY      the history, one JSON line per run (reports/history.jsonl)
//   EASTWEST_MIN_TESTS           the quality gate's minimum number of tests (default: the run's own count)
// A plain object, no import from "allure": the config must load wherever the CLI runs.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const path = (name, fallback) => resolve(root, process.env[name] ?? fallback);
const results = path("EASTWEST_ALLURE_RESULTS", "reports/allure-results");
const conformancePath = path("EASTWEST_CONFORMANCE_REPORT", "reports/conformance-report.json");
const readJson = (file, fallback) => (existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : fallback);

const run = readJson(conformancePath, null);
const impl = run?.implementation;
const name = run ? `${run.name}: ${run.result.toUpperCase()}` : "eastwest conformance (no conformance report: run make conformance)";

// The header of the report: what was certified, and how it ended.
const variables = run
  ? {
      Result: `${run.result}: ${run.reason}`,
      Backend: impl.backend,
      "Control plane": impl.controlPlane,
      Istio: impl.controlPlaneStandIn ? `${impl.istioVersion} (mirrored, not installed)` : impl.istioVersion,
      Envoy: impl.envoyVersion,
      eastwest: `${run.eastwest.version} @ ${run.eastwest.commit.slice(0, 12)}${run.eastwest.dirty ? " (uncommitted changes)" : ""}`,
      Mesh: `${run.topology.meshId}, trust domain ${run.topology.trustDomain}`,
      Clusters: run.topology.clusters.map((c) => `${c.name} (${c.network}, ${c.region}/${c.zone})`).join("; "),
      Selection: run.selection.markers ? `-m "${run.selection.markers}"` : "all profiles",
      "Deliberate breakage": impl.deliberateBreaks.join(", ") || "none",
      Tests: `${run.summary.total}: ${run.summary.passed} passed, ${run.summary.failed} failed, ${run.summary.broken} broken, ${run.summary.skipped} skipped`,
    }
  : {};

// Allure 2's categories.json as Allure 3 rules: the trace footer "eastwest category: <id>" decides.
const categories = readJson(resolve(results, "categories.json"), []).map((c) => ({
  name: c.name,
  matchers: { statuses: c.matchedStatuses, trace: new RegExp(c.traceRegex.replace(/^\(\?s\)\.\*/, "").replace(/\.\*$/, "")) },
  groupByMessage: false,
  expand: true,
}));

export default {
  name,
  output: path("EASTWEST_ALLURE_REPORT", "reports/allure-report"),
  historyPath: path("EASTWEST_ALLURE_HISTORY", "reports/history.jsonl"),
  historyLimit: 60,
  variables,
  categories: { rules: categories },
  hideLabels: ["framework", "language"],
  qualityGate: {
    rules: [{ maxFailures: 0, minTestsCount: Number(process.env.EASTWEST_MIN_TESTS ?? run?.selection.tests ?? 1), fastFail: false }],
  },
  plugins: {
    awesome: {
      options: {
        reportName: name,
        singleFile: true,
        groupBy: ["parentSuite", "suite"],
        stepTreeExpansion: "expand_failed_only",
      },
    },
  },
};
