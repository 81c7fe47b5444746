/**
 * etcd versions: parsing, ordering and the per-version facts the renderers need (which flags exist, which
 * binaries ship, what arm64 needs). Pure data and functions, no Pulumi imports.
 */
import { ETCD_RELEASES, EtcdArch } from "./releases";

/** A parsed `major.minor.patch` etcd version. */
export interface EtcdVersion {
    major: number;
    minor: number;
    patch: number;
    /** `3.4`, `3.5` or `3.6`. */
    line: string;
    text: string;
}

/** Parses `3.5.21` (an optional leading `v` is accepted). Throws on anything else. */
export function parseVersion(text: string): EtcdVersion {
    const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(text.trim());
    if (!m) throw new Error(`"${text}" is not an etcd version such as 3.5.21`);
    const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
    return { major, minor, patch, line: `${major}.${minor}`, text: `${major}.${minor}.${patch}` };
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string | EtcdVersion, b: string | EtcdVersion): number {
    const x = typeof a === "string" ? parseVersion(a) : a;
    const y = typeof b === "string" ? parseVersion(b) : b;
    return x.major - y.major || x.minor - y.minor || x.patch - y.patch;
}

/** True when `v` is at least `min`. */
export function atLeast(v: string | EtcdVersion, min: string): boolean {
    return compareVersions(v, min) >= 0;
}

/** What a given etcd version has; each fact is used by the flag, unit or script renderers. */
export interface VersionFeatures {
    version: EtcdVersion;
    /** `etcdutl` ships in the release tarball (3.5+). */
    hasEtcdutl: boolean;
    /** Corruption checks and watch progress are set through `--feature-gates` and un-prefixed flags (3.6+). */
    featureGates: boolean;
    /** `--experimental-compact-hash-check-enabled` exists (3.5.5+ on the 3.5 line). */
    compactHashCheckFlag: boolean;
    /** `--tls-min-version` exists. */
    tlsMinVersion: boolean;
    /** arm64 binaries refuse to start without `ETCD_UNSUPPORTED_ARCH=arm64` (3.4 and older). */
    arm64NeedsUnsupportedArch: boolean;
    /** Known-bad releases (data inconsistency in 3.5.0–3.5.2). */
    knownBad?: string;
}

/** First 3.5 release with `--experimental-compact-hash-check-enabled` (CHANGELOG-3.5, v3.5.5). */
export const COMPACT_HASH_CHECK_SINCE = "3.5.5";
/** First 3.5 release with `--tls-min-version` / `--tls-max-version` (CHANGELOG-3.5, v3.5.8). */
export const TLS_MIN_VERSION_SINCE = "3.5.8";

/** Facts for a version string. */
export function versionFeatures(text: string): VersionFeatures {
    const v = parseVersion(text);
    const is34 = compareVersions(v, "3.5.0") < 0;
    const is36 = atLeast(v, "3.6.0");
    return {
        version: v,
        hasEtcdutl: !is34,
        featureGates: is36,
        compactHashCheckFlag: atLeast(v, COMPACT_HASH_CHECK_SINCE),
        tlsMinVersion: atLeast(v, TLS_MIN_VERSION_SINCE),
        arm64NeedsUnsupportedArch: is34,
        ...(atLeast(v, "3.5.0") && compareVersions(v, "3.5.3") < 0
            ? { knownBad: "etcd 3.5.0-3.5.2 can return inconsistent data (etcd issue 13766): use 3.5.3 or later" }
            : {}),
    };
}

/** The pinned sha256 of a release tarball, or undefined when the table does not list it. */
export function pinnedSha256(version: string, arch: EtcdArch): string | undefined {
    return ETCD_RELEASES.find((r) => r.version === version)?.sha256[arch];
}

/** The release tarball's file name: `etcd-v3.5.21-linux-amd64.tar.gz`. */
export function tarballName(version: string, arch: EtcdArch): string {
    return `etcd-v${version}-linux-${arch}.tar.gz`;
}

/** The directory the release tarball unpacks into. */
export function tarballDir(version: string, arch: EtcdArch): string {
    return `etcd-v${version}-linux-${arch}`;
}

/** Official download URL of a release (or under a mirror base URL with the same layout). */
export function downloadUrl(version: string, arch: EtcdArch, baseUrl = "https://github.com/etcd-io/etcd/releases/download"): string {
    return `${baseUrl.replace(/\/+$/, "")}/v${version}/${tarballName(version, arch)}`;
}
