/**
 * A real S3-compatible store for tests: versitygw (built from the Go module proxy by `tools/etcd-build.sh
 * objectstore`) serving a scratch directory over TLS on one loopback address, with a CA of its own. Started and
 * stopped by PID; the scratch directory goes with it.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { s3CurlConfig } from "../../components/etcd/day2";
import { etcdBuild } from "../../tools/lab/etcdBuild";

export interface ObjectStore {
    endpoint: string;
    bucket: string;
    region: string;
    /** A curl config file (0600) with the store's keys, as the maintenance step writes it (s3CurlConfig). */
    authFile: string;
    caFile: string;
    secret: string;
    /** The directory the store serves: `<dataDir>/<bucket>/<key>` is an object. */
    dataDir: string;
    /** Scratch space beside the store (removed with it). */
    dir: string;
    stop(): void;
    start(): Promise<void>;
}

function waitForPort(host: string, port: number, ms: number): Promise<void> {
    const until = Date.now() + ms;
    return new Promise((resolve, reject) => {
        const attempt = () => {
            const s = net.connect(port, host);
            s.once("connect", () => {
                s.destroy();
                resolve();
            });
            s.once("error", () => {
                s.destroy();
                if (Date.now() > until) reject(new Error(`nothing listens on ${host}:${port} after ${ms} ms`));
                else setTimeout(attempt, 100);
            });
        };
        attempt();
    });
}

/** Whether process `pid` still exists (not yet reaped counts as gone when it is a zombie of ours). */
function alive(pid: number): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
        return false;
    }
}

/** Builds (once) and starts a store on `address:port` with bucket `bucket`. */
export async function startObjectStore(address: string, port: number, bucket: string): Promise<ObjectStore> {
    const [, bin] = etcdBuild("objectstore", 2);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-s3-"));
    const o = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    o(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=etcd-ha test object store CA"]);
    o(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "store.key", "-out", "store.csr", "-subj", "/CN=store"]);
    fs.writeFileSync(path.join(dir, "ext"), `subjectAltName=IP:${address}\nextendedKeyUsage=serverAuth\n`);
    o(["x509", "-req", "-in", "store.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "store.crt", "-days", "2", "-extfile", "ext"]);
    const dataDir = path.join(dir, "data");
    fs.mkdirSync(path.join(dataDir, bucket), { recursive: true });
    const access = "etcdhaTestAccess";
    // A quote and a backslash in the secret: curl must read s3CurlConfig's quoting back as the same keys.
    const secret = `s3"cret\\${randomBytes(12).toString("hex")}`;
    const authFile = path.join(dir, "auth");
    fs.writeFileSync(authFile, s3CurlConfig({ accessKeyId: access, secretAccessKey: secret }), { mode: 0o600 });
    let child: ChildProcess | undefined;
    const store: ObjectStore = {
        endpoint: `https://${address}:${port}`,
        bucket,
        region: "us-east-1",
        authFile,
        caFile: path.join(dir, "ca.crt"),
        secret,
        dataDir,
        dir,
        stop() {
            const pid = child?.pid;
            if (pid !== undefined && child!.exitCode === null && child!.signalCode === null) {
                child!.kill("SIGTERM");
                // Gone before this returns (at most 10 s), so the port is free and nothing answers on it.
                const sleeper = new Int32Array(new SharedArrayBuffer(4));
                for (let i = 0; i < 100 && alive(pid); i++) Atomics.wait(sleeper, 0, 0, 100);
            }
            child = undefined;
        },
        async start() {
            child = spawn(bin, ["--access", access, "--secret", secret, "--port", `${address}:${port}`, "--cert", path.join(dir, "store.crt"), "--key", path.join(dir, "store.key"), "--quiet", "posix", dataDir], { stdio: "ignore" });
            await waitForPort(address, port, 20_000);
        },
    };
    await store.start();
    return store;
}

/** Stops the store and removes its directory. */
export function removeObjectStore(store: ObjectStore | undefined): void {
    if (!store) return;
    store.stop();
    fs.rmSync(store.dir, { recursive: true, force: true });
}
