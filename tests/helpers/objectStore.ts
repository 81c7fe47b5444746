/**
 * A real S3-compatible store for tests: the lab's object store (tools/lab/objectStore.ts: versitygw built from
 * the Go module proxy, TLS with a CA of its own) on a loopback address of the test's choosing, in a scratch
 * directory, with a curl config file of its keys as the maintenance step writes it. Started and stopped by PID;
 * the scratch directory goes with it.
 */
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { s3CurlConfig } from "../../components/etcd/day2";
import { ObjectStoreRecord, prepareObjectStore, startObjectStore as startStore, stopObjectStore, storeEndpoint } from "../../tools/lab/objectStore";

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

/** Builds (once) and starts a store on `address:port` with bucket `bucket`. */
export async function startObjectStore(address: string, port: number, bucket: string): Promise<ObjectStore> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-s3-"));
    // A quote and a backslash in the secret: curl must read s3CurlConfig's quoting back as the same keys.
    let record: ObjectStoreRecord = prepareObjectStore(dir, address, { port, bucket, accessKey: "etcdhaTestAccess", secretKey: `s3"cret\\${randomBytes(12).toString("hex")}` });
    const authFile = path.join(dir, "auth");
    fs.writeFileSync(authFile, s3CurlConfig({ accessKeyId: record.accessKey, secretAccessKey: record.secretKey }), { mode: 0o600 });
    const store: ObjectStore = {
        endpoint: storeEndpoint(record),
        bucket,
        region: record.region,
        authFile,
        caFile: record.caFile,
        secret: record.secretKey,
        dataDir: path.join(dir, "data"),
        dir,
        stop() {
            record = stopObjectStore(record);
        },
        async start() {
            record = await startStore(record);
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
