/**
 * The lab's object store: versitygw (an S3 gateway over a directory, Apache-2.0, built from the Go module proxy
 * by `tools/etcd-build.sh objectstore`) on the lab's address `<prefix>.250`, port 9443, over TLS with a CA of
 * the lab's own, serving `<lab dir>/objectstore/data`. Every lab host reaches it (they share this machine's
 * network stack). It runs detached from the lab CLI (its PID in lab.json) and is stopped by `lab down`.
 */
import { execFileSync, spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { etcdBuild } from "./etcdBuild";

/** What lab.json records of the store (keys included: the lab dir is 0700 root). */
export interface ObjectStoreRecord {
    address: string;
    port: number;
    bucket: string;
    region: string;
    accessKey: string;
    secretKey: string;
    /** The CA that signed the store's certificate (PEM file). */
    caFile: string;
    dir: string;
    binary: string;
    pid?: number;
}

export const STORE_PORT = 9443;
export const STORE_BUCKET = "etcd-backups";

/** The store's address in a lab range: `<prefix>.250`, beside the hosts (.11, .12, …). */
export const storeAddress = (prefix: string) => `${prefix}.250`;

export const storeEndpoint = (s: Pick<ObjectStoreRecord, "address" | "port">) => `https://${s.address}:${s.port}`;

function portOpen(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.connect(port, host);
        const done = (v: boolean) => {
            s.destroy();
            resolve(v);
        };
        s.setTimeout(1000, () => done(false));
        s.once("connect", () => done(true));
        s.once("error", () => done(false));
    });
}

/** Whether `pid` is the store's process (its executable is the store binary), not a recycled PID. */
export function storeRunning(s: ObjectStoreRecord): boolean {
    if (s.pid === undefined) return false;
    try {
        const stat = fs.readFileSync(`/proc/${s.pid}/stat`, "utf8");
        if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return false;
        return fs.readlinkSync(`/proc/${s.pid}/exe`) === s.binary;
    } catch {
        return false;
    }
}

/**
 * A new store's files in `dir` (CA, certificate for `address`, bucket dir); not started. The keys are random
 * unless given (a test gives a secret with characters curl's config quoting must carry).
 */
export function prepareObjectStore(dir: string, address: string, opts: { port?: number; bucket?: string; accessKey?: string; secretKey?: string } = {}): ObjectStoreRecord {
    const [, binary] = etcdBuild("objectstore", 2);
    const bucket = opts.bucket ?? STORE_BUCKET;
    fs.mkdirSync(path.join(dir, "data", bucket), { recursive: true, mode: 0o700 });
    const o = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    o(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", "/CN=etcd-ha lab object store CA"]);
    o(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "store.key", "-out", "store.csr", "-subj", "/CN=etcd-ha lab object store"]);
    fs.writeFileSync(path.join(dir, "ext"), `subjectAltName=IP:${address}\nextendedKeyUsage=serverAuth\n`);
    o(["x509", "-req", "-in", "store.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "store.crt", "-days", "3650", "-extfile", "ext"]);
    for (const f of ["ca.key", "store.key"]) fs.chmodSync(path.join(dir, f), 0o600);
    return {
        address,
        port: opts.port ?? STORE_PORT,
        bucket,
        region: "us-east-1",
        accessKey: opts.accessKey ?? `etcdha${randomBytes(6).toString("hex")}`,
        secretKey: opts.secretKey ?? randomBytes(24).toString("base64url"),
        caFile: path.join(dir, "ca.crt"),
        dir,
        binary: fs.realpathSync(binary),
    };
}

/** Starts the store (detached; its output in `<dir>/store.log`) and waits until it accepts connections. */
export async function startObjectStore(s: ObjectStoreRecord): Promise<ObjectStoreRecord> {
    if (storeRunning(s)) return s;
    if (await portOpen(s.address, s.port)) throw new Error(`lab object store: something else listens on ${s.address}:${s.port}`);
    const log = fs.openSync(path.join(s.dir, "store.log"), "a");
    // The keys go in the environment versitygw reads (ROOT_ACCESS_KEY_ID / ROOT_SECRET_ACCESS_KEY), not argv.
    const child = spawn(s.binary, ["--port", `${s.address}:${s.port}`, "--cert", path.join(s.dir, "store.crt"), "--key", path.join(s.dir, "store.key"), "--quiet", "posix", path.join(s.dir, "data")], {
        detached: true,
        stdio: ["ignore", log, log],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ROOT_ACCESS_KEY_ID: s.accessKey, ROOT_SECRET_ACCESS_KEY: s.secretKey },
    });
    fs.closeSync(log);
    child.unref();
    const started = { ...s, pid: child.pid };
    for (let i = 0; i < 200; i++) {
        if (await portOpen(s.address, s.port)) return started;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
    }
    stopObjectStore(started);
    throw new Error(`lab object store did not start on ${s.address}:${s.port} (log: ${path.join(s.dir, "store.log")})`);
}

/** Stops the store (SIGTERM by its recorded PID, when that PID is still the store), waiting at most 10 s. */
export function stopObjectStore(s: ObjectStoreRecord): ObjectStoreRecord {
    if (storeRunning(s)) {
        process.kill(s.pid!, "SIGTERM");
        const sleeper = new Int32Array(new SharedArrayBuffer(4));
        for (let i = 0; i < 100 && storeRunning(s); i++) Atomics.wait(sleeper, 0, 0, 100);
        if (storeRunning(s)) process.kill(s.pid!, "SIGKILL");
    }
    const { pid: _pid, ...rest } = s;
    void _pid;
    return rest;
}
