/**
 * Version-change rules for a running etcd cluster, as a pure function (for planning and config checks) and as
 * the same rules in bash (a guard the binaries step runs on each host before anything is swapped).
 *
 * Rules (etcd's upgrade policy: https://etcd.io/docs/v3.6/upgrades/upgrading-etcd/ "Upgrade policy", and
 * the v3.5 → v3.6 and downgrade guides under https://etcd.io/docs/v3.6/upgrades/):
 *   - same version: fine (a rolling restart at most);
 *   - patch upgrade within a minor line: fine;
 *   - minor upgrade one step at a time (3.4 -> 3.5, 3.5 -> 3.6); skipping a minor is refused ("upgrades that
 *     skip a minor version are not supported and will likely fail");
 *   - 3.5 -> 3.6 only from MIN_35_FOR_36 or later (see below);
 *   - patch downgrade within a minor line: allowed, reported as its own kind (the storage format does not
 *     change within a line);
 *   - minor downgrade: refused; the way back is restoring a snapshot taken before the upgrade;
 *   - never to a known-bad release (versionFeatures().knownBad: 3.5.0-3.5.2); staying on one is "same";
 *   - major version changes: refused.
 */
import { BIN_DIR } from "./flags";
import { sq } from "./shell";
import { parseVersion, compareVersions, versionFeatures, atLeast } from "./version";

/**
 * Minimum 3.5 patch every member must run before any member moves to 3.6.
 *
 * etcd's "Upgrade etcd from v3.5 to v3.6" guide first asked for 3.5.20 ("too many learner member" error), then
 * 3.5.26 ("Patch releases 3.5.24 through 3.5.26 fix several potential upgrade blockers", the zombie-members
 * fix; kubespray gates on >=3.5.26, kubespray PR 12634), and now asks for 3.5.32: etcd-io/website PR 1203
 * "docs: recommend 3.5.32 before upgrading to 3.6" (merged 2026-08), because 3.5.32 brings
 * `--v2-deprecation=write-only-skip-check` and the WAL-aware `etcdutl check v2store` for the
 * "detected disallowed v2 WAL" panic (etcd issues 20809, 20870, 21849). We follow the current guide.
 */
export const MIN_35_FOR_36 = "3.5.32";

/** The config key naming the wanted etcd version. */
export const VERSION_KEY = "etcd-ha:etcd.version";

export type UpgradeKind = "same" | "patch" | "minor" | "patch-downgrade";
export type UpgradeVerdict = { ok: true; kind: UpgradeKind } | { ok: false; reason: string };

/** The values a refusal message is built from (versions and `major.minor` lines as text). */
interface MessageVars {
    from: string;
    fromLine: string;
    /** `major.(minor+1)` of `from`: the next minor line. */
    nextLine: string;
    to: string;
    toLine: string;
}

/**
 * Refusal messages. The shell guard renders these same templates with shell variables in place of the
 * `from` values, so both sides say exactly the same thing.
 */
const MESSAGES = {
    major: (v: MessageVars) =>
        `${VERSION_KEY} is ${v.to} but this member runs etcd ${v.from}: changing the major version is not supported; keep ${VERSION_KEY} at a ${v.fromLine}.x release`,
    knownBad: (v: MessageVars, why: string) => `${VERSION_KEY} is ${v.to}, a known-bad etcd release (${why}); set ${VERSION_KEY} to another release`,
    minorDowngrade: (v: MessageVars) =>
        `${VERSION_KEY} is ${v.to} but this member runs etcd ${v.from}: etcd cannot go back from ${v.fromLine} to ${v.toLine} by swapping binaries; keep ${VERSION_KEY} at a ${v.fromLine}.x release, or rebuild ${v.toLine} members from a snapshot taken before the upgrade (snapshot restore)`,
    skipMinor: (v: MessageVars) =>
        `${VERSION_KEY} is ${v.to} but this member runs etcd ${v.from}: etcd upgrades one minor version at a time; upgrade to ${v.nextLine}.x first (set ${VERSION_KEY} to a ${v.nextLine}.x release and apply), then to ${v.to}`,
    below36: (v: MessageVars) =>
        `${VERSION_KEY} is ${v.to} but this member runs etcd ${v.from}: upgrading to 3.6 needs every member on ${MIN_35_FOR_36} or later first; set ${VERSION_KEY} to ${MIN_35_FOR_36} (or a later 3.5.x) and apply, then set it to ${v.to}`,
};

/** Whether moving a member from etcd `from` to etcd `to` is allowed, and what kind of change it is. */
export function checkUpgrade(from: string, to: string): UpgradeVerdict {
    const f = parseVersion(from);
    const t = parseVersion(to);
    const v: MessageVars = { from: f.text, fromLine: f.line, nextLine: `${f.major}.${f.minor + 1}`, to: t.text, toLine: t.line };
    const cmp = compareVersions(t, f);
    if (cmp === 0) return { ok: true, kind: "same" };
    if (t.major !== f.major) return { ok: false, reason: MESSAGES.major(v) };
    const bad = versionFeatures(t.text).knownBad;
    if (bad) return { ok: false, reason: MESSAGES.knownBad(v, bad) };
    if (t.minor === f.minor) return { ok: true, kind: cmp > 0 ? "patch" : "patch-downgrade" };
    if (cmp < 0) return { ok: false, reason: MESSAGES.minorDowngrade(v) };
    if (t.minor !== f.minor + 1) return { ok: false, reason: MESSAGES.skipMinor(v) };
    if (t.line === "3.6" && !atLeast(f, MIN_35_FOR_36)) return { ok: false, reason: MESSAGES.below36(v) };
    return { ok: true, kind: "minor" };
}


/** A message template rendered for bash's double quotes: only the shell variables may expand. */
function shellMessage(text: string): string {
    const literal = text.split("${from}").join("").split("${from_line}").join("").split("${next_line}").join("");
    if (/["$`\\]/.test(literal)) throw new Error(`message cannot be embedded in double quotes: ${text}`);
    return `"${text}"`;
}

/**
 * A bash fragment for the binaries script, run before any binary is swapped: reads the installed version
 * from `<etcdBinary> --version` and refuses (exit 1, the same message as checkUpgrade's reason on stderr)
 * when moving to `to` breaks the rules above. No binary at that path is a fresh install and passes. An
 * existing binary whose version cannot be read is refused (nothing to check it against). On success it
 * prints one line naming the kind of change. Everything lives in a function, so no variable leaks.
 */
export function upgradeGuardShell(to: string, etcdBinary = `${BIN_DIR}/etcd`): string {
    const t = parseVersion(to);
    const sv: MessageVars = { from: "${from}", fromLine: "${from_line}", nextLine: "${next_line}", to: t.text, toLine: t.line };
    const bad = versionFeatures(t.text).knownBad;
    const min = parseVersion(MIN_35_FOR_36);
    // Rules that depend only on `to` are decided here; the rest compares the installed version in bash.
    const rest = bad
        ? `  echo ${shellMessage(MESSAGES.knownBad(sv, bad))} >&2
  exit 1
`
        : `  local to_minor=${t.minor} to_patch=${t.patch} next_line
  next_line="$major.$((minor + 1))"
  if [ "$minor" -eq "$to_minor" ]; then
    if [ "$patch" -lt "$to_patch" ]; then
      echo "upgrade check: etcd $from installed, patch upgrade to $to"
    else
      echo "upgrade check: etcd $from installed, patch-downgrade to $to"
    fi
    return 0
  fi
  if [ "$minor" -gt "$to_minor" ]; then
    echo ${shellMessage(MESSAGES.minorDowngrade(sv))} >&2
    exit 1
  fi
  if [ "$((minor + 1))" -ne "$to_minor" ]; then
    echo ${shellMessage(MESSAGES.skipMinor(sv))} >&2
    exit 1
  fi
${
    t.line === "3.6"
        ? `  if [ "$minor" -lt ${min.minor} ] || { [ "$minor" -eq ${min.minor} ] && [ "$patch" -lt ${min.patch} ]; }; then
    echo ${shellMessage(MESSAGES.below36(sv))} >&2
    exit 1
  fi
`
        : ""
}  echo "upgrade check: etcd $from installed, minor upgrade to $to"
`;
    return `
# etcd-ha upgrade guard: may this member move to etcd ${t.text}? (rules: components/etcd/upgrade.ts)
etcd_ha_upgrade_guard() {
  local bin=${sq(etcdBinary)} to=${t.text} to_major=${t.major}
  local out line from="" major minor patch from_line
  if [ ! -e "$bin" ]; then
    echo "upgrade check: no etcd at $bin, fresh install of etcd $to"
    return 0
  fi
  out=$("$bin" --version 2>/dev/null) || out=""
  while IFS= read -r line; do
    if [[ $line =~ ^etcd\\ Version:\\ v?([0-9]+)\\.([0-9]+)\\.([0-9]+)$ ]]; then
      major=$((10#\${BASH_REMATCH[1]}))
      minor=$((10#\${BASH_REMATCH[2]}))
      patch=$((10#\${BASH_REMATCH[3]}))
      from="$major.$minor.$patch"
      break
    fi
  done <<<"$out"
  if [ -z "$from" ]; then
    echo "cannot read the version of the installed $bin (\\"$bin --version\\" printed no \\"etcd Version: X.Y.Z\\" line): refusing to replace it with etcd $to; check that binary by hand" >&2
    exit 1
  fi
  from_line="$major.$minor"
  if [ "$from" = "$to" ]; then
    echo "upgrade check: etcd $from installed, same version"
    return 0
  fi
  if [ "$major" -ne "$to_major" ]; then
    echo ${shellMessage(MESSAGES.major(sv))} >&2
    exit 1
  fi
${rest}}
etcd_ha_upgrade_guard
`;
}
