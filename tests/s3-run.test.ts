/**
 * The members' S3 client (components/etcd/sh/s3.sh) against a real S3-compatible store: versitygw (built from
 * the Go module proxy by tools/etcd-build.sh objectstore) serving a scratch directory over TLS on a loopback
 * address, with a CA of the test's own. Every request is curl's own SigV4 signature; nothing here imitates S3.
 */
import { spawnSync } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { s3CurlConfig } from "../components/etcd/day2";
import { ObjectStore, removeObjectStore, startObjectStore } from "./helpers/objectStore";
import { itLintsClean } from "./helpers/tools";

const S3_SH = path.join(__dirname, "..", "components", "etcd", "sh", "s3.sh");
const ADDRESS = "127.66.8.1";
const PORT = 9443;
const BUCKET = "etcd-backups";

let store: ObjectStore;
let dir: string;
let SECRET: string;

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** Runs `body` in bash with s3.sh sourced and the store's parameters set. */
function s3(body: string, over: Record<string, string> = {}) {
    const params = { s3_endpoint: store.endpoint, s3_bucket: BUCKET, s3_region: store.region, s3_ca: store.caFile, s3_auth: store.authFile, s3_timeout: "20", ...over };
    const script = ["set -euo pipefail", `source ${JSON.stringify(S3_SH)}`, ...Object.entries(params).map(([k, v]) => `${k}=${JSON.stringify(v)}`), body].join("\n");
    return spawnSync("bash", ["-c", script], { encoding: "utf8", timeout: 60_000, cwd: dir });
}

beforeAll(async () => {
    store = await startObjectStore(ADDRESS, PORT, BUCKET);
    dir = store.dir;
    SECRET = store.secret;
    fs.writeFileSync(path.join(dir, "wrong-auth"), `user = "etcdhaTestAccess:not-the-secret"\n`, { mode: 0o600 });
}, 1_500_000);

afterAll(() => removeObjectStore(store));

describe("sh/s3.sh", () => {
    itLintsClean(() => fs.readFileSync(S3_SH, "utf8"));

    test("put, head, get: the object comes back byte for byte, with its sha256 as metadata", () => {
        const body = randomBytes(300_000);
        fs.writeFileSync(path.join(dir, "snap.db"), body);
        const sum = sha256(body);
        const r = s3(`s3_put snap.db etcd/etcd_etcd1_20261208T010203Z.db ${sum}\ns3_head etcd/etcd_etcd1_20261208T010203Z.db\ns3_get etcd/etcd_etcd1_20261208T010203Z.db back.db\nsha256sum back.db`);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        const [head, got] = r.stdout.trim().split("\n");
        expect(head).toBe(`${body.length} ${sum}`);
        expect(got.split(" ")[0]).toBe(sum);
        // What the store holds is the body itself.
        expect(sha256(fs.readFileSync(path.join(store.dataDir, BUCKET, "etcd", "etcd_etcd1_20261208T010203Z.db")))).toBe(sum);
    });

    test("the store refuses a body that does not match the sha256 it was sent with: nothing is stored", () => {
        fs.writeFileSync(path.join(dir, "bad.db"), "not what the sum says");
        const r = s3(`s3_put bad.db etcd/bad.db ${sha256("something else")}`);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/^upload of etcd\/bad\.db to https:\/\/127\.66\.8\.1:9443\/etcd-backups failed: /);
        expect(fs.existsSync(path.join(store.dataDir, BUCKET, "etcd", "bad.db"))).toBe(false);
    });

    test("list pages through every object under a prefix, in key order, with sizes and times", () => {
        const keys = [1, 2, 3, 4, 5].map((i) => `list/a/etcd_etcd2_2026120${i}T000000Z.db`);
        fs.writeFileSync(path.join(dir, "small"), "x".repeat(7));
        const put = keys.map((k) => `s3_put small ${k} ${sha256("x".repeat(7))}`).join("\n");
        const other = `s3_put small list/b/other.db ${sha256("x".repeat(7))}`;
        const r = s3(`${put}\n${other}\ns3_list list/a/ 2`);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        const rows = r.stdout.trim().split("\n").map((l) => l.split(" "));
        expect(rows.map((x) => x[0])).toEqual(keys);
        for (const x of rows) {
            expect(x[1]).toBe("7");
            expect(Number.isNaN(Date.parse(x[2]))).toBe(false);
        }
        // An empty prefix lists nothing, successfully.
        const none = s3("s3_list nothing/here/");
        expect(none.status).toBe(0);
        expect(none.stdout).toBe("");
    });

    test("delete removes the object; head then fails", () => {
        fs.writeFileSync(path.join(dir, "gone"), "bye");
        const r = s3(`s3_put gone del/gone.db ${sha256("bye")}\ns3_delete del/gone.db\nif s3_head del/gone.db; then echo still-there; else echo gone; fi`);
        expect(r.status).toBe(0);
        expect(r.stdout.trim()).toBe("gone");
    });

    test("a wrong secret is refused, and no output names the keys", () => {
        fs.writeFileSync(path.join(dir, "w"), "w");
        const r = s3(`s3_put w wrong/w.db ${sha256("w")}`, { s3_auth: path.join(dir, "wrong-auth") });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId/);
        expect(r.stdout + r.stderr).not.toContain(SECRET);
        expect(r.stdout + r.stderr).not.toContain("not-the-secret");
    });

    test("a store that does not answer fails within the connect bound, and plain http is refused", () => {
        const t0 = Date.now();
        const down = s3(`s3_head x.db`, { s3_endpoint: `https://${ADDRESS}:9` });
        expect(down.status).not.toBe(0);
        expect(Date.now() - t0).toBeLessThan(15_000);
        const http = s3(`s3_head x.db`, { s3_endpoint: `http://${ADDRESS}:${PORT}` });
        expect(http.status).not.toBe(0);
        expect(http.stderr).toMatch(/[Pp]rotocol/);
    });

    test("keys are checked before any request; query values are percent-encoded", () => {
        for (const bad of ["/abs.db", "a//b.db", "sp ace.db", "q?.db", "x&y.db", ""]) {
            const r = s3(`s3_url ${JSON.stringify(bad)}`);
            expect({ bad, status: r.status }).toEqual({ bad, status: 1 });
        }
        const enc = s3(`s3_qenc 'etcd/a=b+c~d_e.f-g'`);
        expect(enc.stdout).toBe("etcd%2Fa%3Db%2Bc~d_e.f-g");
    });
});

describe("s3CurlConfig", () => {
    test("quotes the keys as curl reads them, and refuses keys curl could not read back", () => {
        expect(s3CurlConfig({ accessKeyId: "AK", secretAccessKey: 'a"b\\c' })).toBe('user = "AK:a\\"b\\\\c"\n');
        expect(() => s3CurlConfig({ accessKeyId: "A:K", secretAccessKey: "s" })).toThrow(/etcd-ha:s3AccessKeyId must be 1-1024 printable characters without ':'/);
        expect(() => s3CurlConfig({ accessKeyId: "", secretAccessKey: "s" })).toThrow(/etcd-ha:s3AccessKeyId/);
        expect(() => s3CurlConfig({ accessKeyId: "AK", secretAccessKey: "line\nbreak" })).toThrow(/etcd-ha:s3SecretAccessKey must be 1-1024 printable characters/);
    });
});
