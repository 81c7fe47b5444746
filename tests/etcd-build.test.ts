/**
 * tools/etcd-build.sh: etcd 3.5 and 3.6 built from the Go module proxy (CI builds them before the tests; here
 * they come from the cache), packed in the upstream release layout for the air-gapped install path. Checks the
 * newest patch the proxy serves was chosen, the tarball's layout and reproducible metadata, its sha256, that
 * the three programs run and report the version, and that they are static (CGO off); and the lab's Go writer
 * (`writer`), built on etcd's client at the version its go.mod pins.
 */
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { itLintsClean, needTool } from "./helpers/tools";

const SCRIPT = path.join(__dirname, "..", "tools", "etcd-build.sh");

interface Built {
    version: string;
    tarball: string;
    sha256: string;
}

function build(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", timeout: 1_500_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** True when the ELF file has no PT_INTERP program header (no dynamic loader: a static binary). */
function isStatic(file: string): boolean {
    const b = fs.readFileSync(file);
    expect(b.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    const phoff = Number(b.readBigUInt64LE(0x20));
    const phentsize = b.readUInt16LE(0x36);
    const phnum = b.readUInt16LE(0x38);
    for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
    return true;
}

let built: Built[] = [];
let served: string[] = [];

beforeAll(() => {
    needTool("go", "golang (the Go toolchain, 1.25 or later)");
    const r = build(["3.5", "3.6"]);
    if (r.status !== 0) throw new Error(`tools/etcd-build.sh 3.5 3.6 failed (${r.status}):\n${r.stderr}`);
    built = r.stdout
        .trim()
        .split("\n")
        .map((l) => {
            const [version, tarball, sha256] = l.split(" ");
            return { version, tarball, sha256 };
        });
    served = execFileSync("go", ["list", "-m", "-versions", "go.etcd.io/etcd/server/v3"], { encoding: "utf8", timeout: 120_000 }).trim().split(" ").slice(1);
}, 1_500_000);

describe("tools/etcd-build.sh", () => {
    it("builds the newest 3.5 and 3.6 patch releases whose server, etcdctl and etcdutl modules the Go module proxy serves", () => {
        const patch = (v: string) => Number(v.split(".")[2]);
        const download = (m: string, v: string) => spawnSync("go", ["mod", "download", "-json", `go.etcd.io/etcd/${m}/v3@v${v}`], { encoding: "utf8", timeout: 120_000 }).status === 0;
        expect(built.map((b) => b.version.split(".").slice(0, 2).join("."))).toEqual(["3.5", "3.6"]);
        for (const b of built) {
            const line = b.version.split(".").slice(0, 2).join(".");
            for (const m of ["server", "etcdctl", "etcdutl"]) expect([m, download(m, b.version)]).toEqual([m, true]);
            // Every newer patch the proxy lists lacks one of the three modules.
            const newer = served.filter((v) => new RegExp(`^v${line.replace(".", "\\.")}\\.\\d+$`).test(v) && patch(v.slice(1)) > patch(b.version)).map((v) => v.slice(1));
            for (const v of newer) expect([v, ["etcdctl", "etcdutl"].every((m) => download(m, v))]).toEqual([v, false]);
        }
    });

    it("packs each in the upstream release layout, reproducibly (owner 0, mtime 0), with its sha256 beside it; outside the repository", () => {
        for (const b of built) {
            const top = `etcd-v${b.version}-linux-amd64`;
            expect(path.basename(b.tarball)).toBe(`${top}.tar.gz`);
            expect(path.relative(path.resolve(__dirname, ".."), b.tarball).startsWith("..")).toBe(true);
            const listing = execFileSync("tar", ["-tvzf", b.tarball, "--numeric-owner", "--full-time"], { encoding: "utf8" }).trim().split("\n");
            const names = listing.map((l) => l.split(/\s+/).pop()).sort();
            expect(names).toEqual([`${top}/`, `${top}/README-etcd-ha.txt`, `${top}/etcd`, `${top}/etcdctl`, `${top}/etcdutl`]);
            for (const l of listing) {
                expect(l).toMatch(/ 0\/0 /);
                expect(l).toContain("1970-01-01 00:00:00");
            }
            for (const l of listing.filter((x) => /\/etcd(ctl|utl)?$/.test(x))) expect(l.startsWith("-rwxr-xr-x")).toBe(true);
            const digest = createHash("sha256").update(fs.readFileSync(b.tarball)).digest("hex");
            expect(b.sha256).toBe(digest);
            expect(fs.readFileSync(`${b.tarball}.sha256`, "utf8")).toBe(`${digest}  ${top}.tar.gz\n`);
        }
    });

    it("the three programs run, report the version and are static (CGO off)", () => {
        for (const b of built) {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-build-test-"));
            try {
                execFileSync("tar", ["-xzf", b.tarball, "-C", dir]);
                const bin = (n: string) => path.join(dir, `etcd-v${b.version}-linux-amd64`, n);
                expect(execFileSync(bin("etcd"), ["--version"], { encoding: "utf8" })).toMatch(new RegExp(`^etcd Version: ${b.version.replace(/\./g, "\\.")}$`, "m"));
                expect(execFileSync(bin("etcdctl"), ["version"], { encoding: "utf8" })).toMatch(new RegExp(`^etcdctl version: ${b.version.replace(/\./g, "\\.")}$`, "m"));
                expect(execFileSync(bin("etcdutl"), ["version"], { encoding: "utf8" })).toMatch(new RegExp(`^etcdutl version: ${b.version.replace(/\./g, "\\.")}$`, "m"));
                for (const n of ["etcd", "etcdctl", "etcdutl"]) expect([n, isStatic(bin(n))]).toEqual([n, true]);
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        }
    });

    it("a second call uses the cache (same tarball, same sha256, no build)", () => {
        const r = build([built[0].version]);
        expect(r.status).toBe(0);
        expect(r.stdout.trim()).toBe(`${built[0].version} ${built[0].tarball} ${built[0].sha256}`);
        expect(r.stderr).toBe("");
    });

    it.each([["3.x"], ["v3.5.1"], ["3.5.1; rm -rf /"]])("refuses the release %s, naming the accepted forms", (bad) => {
        const r = build([bad]);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("a release is a minor line (3.5), a version (3.5.36), 'writer' or 'objectstore'");
        expect(r.stdout).toBe("");
    });

    it("builds the Go writer on etcd's client at the version its go.mod pins: static, cached, refuses bad flags", () => {
        const r = build(["writer"]);
        expect(r.status).toBe(0);
        const bin = /^writer (\S+)$/.exec(r.stdout.trim())![1];
        expect(isStatic(bin)).toBe(true);
        const mod = fs.readFileSync(path.join(__dirname, "..", "tools", "lab", "gowriter", "go.mod"), "utf8");
        expect(mod).toMatch(/^\s*go\.etcd\.io\/etcd\/client\/v3 v3\.6\.\d+$/m);
        // The module's own record: `go version -m` names the client it was built with.
        const info = execFileSync("go", ["version", "-m", bin], { encoding: "utf8" });
        expect(info).toContain(`go.etcd.io/etcd/client/v3\t${/client\/v3 (v\S+)/.exec(mod)![1]}`);
        const again = build(["writer"]);
        expect(again.stdout).toBe(r.stdout);
        expect(again.stderr).toBe("");
        const bad = spawnSync(bin, ["-endpoints="], { encoding: "utf8", timeout: 10_000 });
        expect(bad.status).toBe(2);
        expect(bad.stderr).toContain("-endpoints is required");
    });

    itLintsClean(() => fs.readFileSync(SCRIPT, "utf8"));
});
