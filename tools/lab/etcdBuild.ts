/**
 * Runs tools/etcd-build.sh for one target (a release line or version, `writer` or `objectstore`) and returns the
 * fields of the line it prints (`<version> <tarball> <sha256>`, or `writer <binary>`, `objectstore <binary>`).
 * Builds once, then the cache answers.
 */
import { spawnSync } from "child_process";
import * as path from "path";
import { PROJECT_ROOT } from "./hosts";

export function etcdBuild(target: string, fields: number): string[] {
    const r = spawnSync("bash", [path.join(PROJECT_ROOT, "tools", "etcd-build.sh"), target], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 1_500_000 });
    const out = (r.stdout ?? "").trim().split(" ");
    if (r.status !== 0 || out.length !== fields || out.some((f) => f === "")) {
        throw new Error(`building ${target === "writer" ? "the Go writer" : target === "objectstore" ? "the object store" : `etcd ${target}`} failed (exit ${r.status ?? r.signal}): run \`bash tools/etcd-build.sh ${target}\` to see why`);
    }
    return out;
}
