/**
 * Running the machine's tools from tests: a missing tool fails loudly with the command that installs it
 * (CI installs them with tools/install-os-deps.sh), never a silent skip.
 */
import { spawnSync } from "child_process";

/** Debian packages of the tools the tests call, where the package is not named after the tool. */
const PACKAGES: Record<string, string> = { timeout: "coreutils", unshare: "util-linux", mount: "util-linux", etcd: "etcd-server", etcdctl: "etcd-client" };

/** Throws "<cmd> is not installed: run `apt-get install -y <package>`" when `cmd` is not on PATH. */
export function needTool(cmd: string, pkg = PACKAGES[cmd] ?? cmd): void {
    if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) throw new Error(`${cmd} is not installed: run \`apt-get install -y ${pkg}\``);
}

/** Runs a tool (bounded), with `input` on stdin; a missing tool throws the install hint. */
export function runTool(cmd: string, args: string[], input?: string, timeout = 30_000) {
    const r = spawnSync(cmd, args, { input, encoding: "utf8", timeout });
    if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new Error(`${cmd} is not installed: run \`apt-get install -y ${PACKAGES[cmd] ?? cmd}\``);
    }
    return r;
}

/** `bash -n` of a script: its stderr and exit status (both empty/0 when it parses). */
export function bashSyntax(script: string) {
    return runTool("bash", ["-n"], script);
}

/**
 * shellcheck at style level (the strictest) on a bash script; a `#!/bin/bash` line is added when the
 * script has none. Its stdout lists the findings (empty, with status 0, when there is none).
 */
export function shellcheck(script: string) {
    return runTool("shellcheck", ["--shell=bash", "--severity=style", "--format=gcc", "-"], script.startsWith("#!") ? script : `#!/bin/bash\n${script}\n`);
}

/**
 * Registers the two lint tests every rendered bash script gets: "parses with bash -n" and "passes
 * shellcheck with no finding". Call inside a describe block; `script` is read when the tests run.
 */
export function itLintsClean(script: () => string): void {
    it("parses with bash -n", () => {
        const r = bashSyntax(script());
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
    });
    it("passes shellcheck with no finding", () => {
        const r = shellcheck(script());
        expect(r.stdout).toBe("");
        expect(r.status).toBe(0);
    });
}
