/**
 * The rendered flag set, run by a real etcd: Debian's etcd 3.4.23 starts as a one-member cluster with
 * exactly the flags `etcdFlags` renders (only the certificate directory is moved to a temp dir, and the
 * localhost listeners are off so nothing collides on this machine), serves etcdctl over mutual TLS with an
 * admin-style client certificate, refuses a client without one, and answers /health on the metrics port.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { etcdFlags } from "../components/etcd/flags";
import { PKI_DIR } from "../components/pki/certTable";
import { tuningOf } from "../components/etcd/options";
import { EtcdSchema } from "../components/config/schema";
import { httpGet } from "./helpers/http";

const ADDR = "127.77.0.1";
const PORTS = { client: 32379, peer: 32380, metrics: 32381 };

function need(cmd: string, pkg: string) {
    if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) throw new Error(`${cmd} is not installed: run \`apt-get install -y ${pkg}\``);
}

function openssl(args: string[], cwd: string) {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** CA, server/peer cert for the member, and a client cert, all ECDSA P-256 like EtcdPki's defaults. */
function makePki(dir: string) {
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=etcd-ca", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt"], dir);
    const leaf = (name: string, cn: string, ext: string) => {
        fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
        openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${cn}`, "-keyout", `${name}.key`, "-out", `${name}.csr`], dir);
        openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.crt`], dir);
    };
    const member = `subjectAltName=DNS:smoke1,DNS:localhost,IP:${ADDR},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n`;
    leaf("server", "smoke1", member);
    leaf("peer", "smoke1", member);
    leaf("admin", "etcd-admin", "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n");
}

/** The body of a plain-HTTP GET. */
const get = async (url: string): Promise<string> => (await httpGet(url, 2000)).body;

describe("etcd 3.4 runs the rendered flags", () => {
    let dir: string;
    let proc: ChildProcess | undefined;
    let log = "";
    const ctl = (args: string[], certs = true) =>
        spawnSync("etcdctl", [`--endpoints=https://${ADDR}:${PORTS.client}`, `--cacert=${dir}/pki/ca.crt`, ...(certs ? [`--cert=${dir}/pki/admin.crt`, `--key=${dir}/pki/admin.key`] : []), "--dial-timeout=2s", "--command-timeout=3s", ...args], { encoding: "utf8", timeout: 10_000, env: { ...process.env, ETCDCTL_API: "3" } });

    beforeAll(async () => {
        need("etcd", "etcd-server");
        need("etcdctl", "etcd-client");
        need("openssl", "openssl");
        const listening = spawnSync("ss", ["-ltnH"], { encoding: "utf8" }).stdout ?? "";
        if (listening.includes(`${ADDR}:`)) throw new Error(`${ADDR} already has listeners; this test needs it free`);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-smoke-"));
        fs.mkdirSync(path.join(dir, "pki"));
        fs.mkdirSync(path.join(dir, "data"), { mode: 0o700 });
        makePki(path.join(dir, "pki"));
        const version = /etcd Version: (\S+)/.exec(execFileSync("etcd", ["--version"], { encoding: "utf8" }))![1];
        const flags = etcdFlags({
            version,
            name: "smoke1",
            address: ADDR,
            ports: PORTS,
            dataDir: path.join(dir, "data"),
            ...tuningOf(EtcdSchema.parse({})),
            listenLocalhost: false,
        }).map(([n, v]) => `--${n}=${v.split(PKI_DIR).join(path.join(dir, "pki"))}`);
        // The bootstrap settings arrive as the start step's bootstrap.env provides them: ETCD_INITIAL_* variables.
        const bootstrapEnv = { ETCD_INITIAL_CLUSTER: `smoke1=https://${ADDR}:${PORTS.peer}`, ETCD_INITIAL_CLUSTER_TOKEN: "smoke-token", ETCD_INITIAL_CLUSTER_STATE: "new" };
        proc = spawn("etcd", flags, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...bootstrapEnv } });
        proc.stdout!.on("data", (d) => (log += d));
        proc.stderr!.on("data", (d) => (log += d));
        for (let i = 0; i < 60; i++) {
            if (proc.exitCode !== null) throw new Error(`etcd exited ${proc.exitCode}:\n${log.slice(-3000)}`);
            if (ctl(["endpoint", "health"]).status === 0) return;
            await new Promise((r) => setTimeout(r, 250));
        }
        throw new Error(`etcd not healthy within 15 s:\n${log.slice(-3000)}`);
    });

    afterAll(async () => {
        if (proc && proc.exitCode === null) {
            const exited = new Promise((r) => proc!.once("exit", r));
            proc.kill("SIGTERM");
            let timer: NodeJS.Timeout | undefined;
            await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
            clearTimeout(timer);
            if (proc.exitCode === null) proc.kill("SIGKILL");
        }
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("serves writes and reads over mutual TLS with a client certificate", () => {
        expect(ctl(["put", "/smoke", "ok"]).stdout.trim()).toBe("OK");
        expect(ctl(["get", "/smoke", "--print-value-only"]).stdout.trim()).toBe("ok");
        const members = ctl(["member", "list"]).stdout;
        expect(members).toContain(`, started, smoke1, https://${ADDR}:${PORTS.peer}, https://${ADDR}:${PORTS.client}, false`);
    });

    it("refuses a client without a certificate", () => {
        const r = ctl(["get", "/smoke"], false);
        expect(r.status).not.toBe(0);
    });

    it("answers /health and /metrics on the plain-HTTP metrics listener", async () => {
        expect(JSON.parse(await get(`http://${ADDR}:${PORTS.metrics}/health`))).toMatchObject({ health: "true" });
        expect(await get(`http://${ADDR}:${PORTS.metrics}/metrics`)).toContain("etcd_server_has_leader 1");
    });

    it("logs no TLS or flag errors", () => {
        expect(log).not.toMatch(/unknown flag|incompatible key usage|bad certificate|invalid/i);
        expect(log).toContain("serving client traffic securely");
        expect(log).toContain("started as single-node");
    });
});
