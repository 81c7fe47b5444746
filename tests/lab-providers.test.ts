/**
 * The lab's stand-ins for @pulumi/tls and @pulumi/random, checked by meaning with independent tools:
 * openssl (certificates, requests, chains), ssh-keygen (OpenSSH keys and fingerprints), libxcrypt's bcrypt
 * via perl's crypt(), and a real mutual-TLS handshake with node's tls module.
 */
import { execFileSync, spawnSync } from "child_process";
import { pemBlock, pemStart } from "./helpers/tokens";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { createTls, hashForState, ProviderResult, TLS_TYPES } from "../tools/lab/providers/tls";
import { bcryptHash, createRandom, DEFAULT_SPECIAL_CHARS, RANDOM_TYPES } from "../tools/lab/providers/random";

const KEY = "tls:index/privateKey:PrivateKey";
const CSR = "tls:index/certRequest:CertRequest";
const SELF = "tls:index/selfSignedCert:SelfSignedCert";
const LOCAL = "tls:index/locallySignedCert:LocallySignedCert";
const RSTRING = "random:index/randomString:RandomString";
const RPASSWORD = "random:index/randomPassword:RandomPassword";

let dir: string;
beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lab-providers-"));
});
afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes a file in the test directory and returns its path. */
function file(name: string, content: string, mode = 0o600): string {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content, { mode });
    return p;
}

function openssl(args: string[], input?: string): string {
    return execFileSync("openssl", args, { input, encoding: "utf8" });
}

/** A string output, failing the test if it is missing or not a string. */
function out(r: ProviderResult, key: string): string {
    const v = r.outputs[key];
    if (typeof v !== "string") throw new Error(`output ${key} is ${typeof v}`);
    return v;
}

/** glibc/libxcrypt crypt() through perl: an independent bcrypt implementation. */
function crypt(password: string, setting: string): string {
    return execFileSync("perl", ["-e", "print crypt($ARGV[0], $ARGV[1])", "--", password, setting], { encoding: "utf8" });
}

/** Whether openssl accepts a request's self-signature. */
function reqVerifies(pem: string): boolean {
    const r = spawnSync("openssl", ["req", "-noout", "-verify"], { input: pem, encoding: "utf8" });
    return r.status === 0 && /verify OK/.test(r.stdout + r.stderr);
}

function certText(pem: string): string {
    return openssl(["x509", "-noout", "-text"], pem);
}

/** Names of the X.509v3 extensions openssl prints, with " critical" where marked. */
function extensionNames(text: string): string[] {
    const section = text.split("X509v3 extensions:")[1]?.split("Signature Algorithm:")[0] ?? "";
    return [...section.matchAll(/^ {12}(\S[^:\n]*):( critical)?[ \t]*$/gm)].map((m) => `${m[1]}${m[2] ?? ""}`);
}

/** The value line openssl prints under an extension. */
function extValue(text: string, name: string): string {
    const lines = text.split("\n");
    const i = lines.findIndex((l) => l.trim().startsWith(`${name}:`));
    if (i < 0) throw new Error(`no ${name} in certificate`);
    return lines[i + 1].trim();
}

function sha1Colon(b: Buffer): string {
    return (crypto.createHash("sha1").update(b).digest("hex").toUpperCase().match(/../g) ?? []).join(":");
}

/** The uncompressed EC point of a P-256 public key, computed independently through JWK. */
function ecPoint(publicKeyPem: string): Buffer {
    const jwk = crypto.createPublicKey(publicKeyPem).export({ format: "jwk" });
    return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? "", "base64url"), Buffer.from(jwk.y ?? "", "base64url")]);
}

async function key(inputs: Record<string, unknown>): Promise<ProviderResult> {
    return createTls(KEY, "k", inputs);
}

async function p256(): Promise<string> {
    return out(await key({ algorithm: "ECDSA", ecdsaCurve: "P256" }), "privateKeyPem");
}

const CA_USES = ["cert_signing", "crl_signing", "digital_signature"];

async function selfSignedCa(keyPem: string, extra: Record<string, unknown> = {}): Promise<ProviderResult> {
    return createTls(SELF, "ca", {
        privateKeyPem: keyPem,
        subject: { commonName: "etcd-ca", organization: "etcd-ha" },
        isCaCertificate: true,
        validityPeriodHours: 87600,
        allowedUses: CA_USES,
        ...extra,
    });
}

async function csr(keyPem: string, extra: Record<string, unknown> = {}): Promise<ProviderResult> {
    return createTls(CSR, "csr", {
        privateKeyPem: keyPem,
        subject: { commonName: "etcd1", organization: "etcd-ha" },
        dnsNames: ["etcd1", "etcd1.example"],
        ipAddresses: ["127.0.0.1", "10.103.0.101"],
        ...extra,
    });
}

async function signed(csrPem: string, caPem: string, caKeyPem: string, extra: Record<string, unknown> = {}): Promise<ProviderResult> {
    return createTls(LOCAL, "leaf", {
        certRequestPem: csrPem,
        caCertPem: caPem,
        caPrivateKeyPem: caKeyPem,
        validityPeriodHours: 24,
        allowedUses: ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
        ...extra,
    });
}

describe("tls PrivateKey", () => {
    it("defaults ECDSA to P-224: SEC 1 PEM, PKCS#8 PEM, empty OpenSSH forms, defaults and secrets as the provider reports them", async () => {
        const r = await key({ algorithm: "ECDSA" });
        expect(openssl(["pkey", "-noout", "-text"], out(r, "privateKeyPem"))).toContain("ASN1 OID: secp224r1");
        expect(out(r, "privateKeyPem")).toMatch(pemBlock("EC PRIVATE KEY"));
        expect(out(r, "privateKeyPemPkcs8")).toMatch(pemBlock("PRIVATE KEY"));
        expect(out(r, "publicKeyPem")).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
        for (const k of ["privateKeyOpenssh", "publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256"]) expect(out(r, k)).toBe("");
        expect(r.outputs).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P224", rsaBits: 2048 });
        expect(r.secretOutputs.sort()).toEqual(["privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"]);
        const der = crypto.createPublicKey(out(r, "publicKeyPem")).export({ type: "spki", format: "der" });
        expect(r.id).toBe(hashForState(der));
        // The PKCS#8 form holds the same key.
        expect(crypto.createPublicKey(out(r, "privateKeyPemPkcs8")).export({ type: "spki", format: "der" }).equals(der)).toBe(true);
    });

    it.each([
        ["P256", "prime256v1", "ecdsa-sha2-nistp256"],
        ["P384", "secp384r1", "ecdsa-sha2-nistp384"],
        ["P521", "secp521r1", "ecdsa-sha2-nistp521"],
    ])("ECDSA %s: the curve asked for, and OpenSSH forms ssh-keygen agrees with", async (curve, oid, sshType) => {
        const r = await key({ algorithm: "ECDSA", ecdsaCurve: curve });
        expect(openssl(["pkey", "-noout", "-text"], out(r, "privateKeyPem"))).toContain(`ASN1 OID: ${oid}`);
        const priv = file(`id_${curve}`, out(r, "privateKeyOpenssh"));
        expect(execFileSync("ssh-keygen", ["-y", "-f", priv], { encoding: "utf8" }).trim()).toBe(out(r, "publicKeyOpenssh").trim());
        expect(out(r, "publicKeyOpenssh")).toMatch(new RegExp(`^${sshType} \\S+\\n$`));
        const pub = file(`id_${curve}.pub`, out(r, "publicKeyOpenssh"), 0o644);
        expect(execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", pub], { encoding: "utf8" })).toContain(out(r, "publicKeyFingerprintSha256"));
        expect(execFileSync("ssh-keygen", ["-l", "-E", "md5", "-f", pub], { encoding: "utf8" })).toContain(`MD5:${out(r, "publicKeyFingerprintMd5")}`);
    });

    it("RSA: 2048 bits by default as PKCS#1, rsaBits honoured, under 1024 refused like Go", async () => {
        const def = await key({ algorithm: "RSA" });
        expect(out(def, "privateKeyPem")).toMatch(pemStart("RSA PRIVATE KEY"));
        expect(openssl(["pkey", "-noout", "-text"], out(def, "privateKeyPem"))).toContain("Private-Key: (2048 bit");
        expect(def.outputs).toMatchObject({ rsaBits: 2048, ecdsaCurve: "P224" });
        const small = await key({ algorithm: "RSA", rsaBits: 1024 });
        expect(openssl(["pkey", "-noout", "-text"], out(small, "privateKeyPem"))).toContain("Private-Key: (1024 bit");
        const priv = file("id_rsa", out(small, "privateKeyOpenssh"));
        expect(execFileSync("ssh-keygen", ["-y", "-f", priv], { encoding: "utf8" }).trim()).toBe(out(small, "publicKeyOpenssh").trim());
        await expect(key({ algorithm: "RSA", rsaBits: 512 })).rejects.toThrow(/512-bit keys are insecure/);
    });

    it("ED25519: PKCS#8 PEM as privateKeyPem and a working OpenSSH key", async () => {
        const r = await key({ algorithm: "ED25519" });
        expect(out(r, "privateKeyPem")).toMatch(pemStart("PRIVATE KEY"));
        expect(crypto.createPrivateKey(out(r, "privateKeyPem")).asymmetricKeyType).toBe("ed25519");
        const priv = file("id_ed25519", out(r, "privateKeyOpenssh"));
        expect(execFileSync("ssh-keygen", ["-y", "-f", priv], { encoding: "utf8" }).trim()).toBe(out(r, "publicKeyOpenssh").trim());
    });

    it("refuses unknown keys, bad values and missing inputs, naming the input and the accepted values", async () => {
        await expect(key({ algorithm: "ECDSA", ecdsaCurv: "P256" })).rejects.toThrow(/"k": input "ecdsaCurv" is not an input .*accepted: algorithm, ecdsaCurve, rsaBits/);
        await expect(key({ algorithm: "ECDSA", ecdsaCurve: "P-256" })).rejects.toThrow(/"ecdsaCurve" = "P-256" is not accepted; accepted values: P224, P256, P384, P521/);
        await expect(key({ algorithm: "DSA" })).rejects.toThrow(/accepted values: RSA, ECDSA, ED25519/);
        await expect(key({ ecdsaCurve: "P256" })).rejects.toThrow(/missing required input "algorithm"/);
        await expect(key({ algorithm: "RSA", rsaBits: "4096" })).rejects.toThrow(/"rsaBits" must be a whole number/);
        // What the SDK constructor registers: every output key as undefined, which does not count as an input.
        const sdkShaped = await key({ algorithm: "ECDSA", ecdsaCurve: "P256", rsaBits: undefined, privateKeyPem: undefined, publicKeyOpenssh: undefined });
        expect(sdkShaped.outputs.ecdsaCurve).toBe("P256");
        await expect(key({ algorithm: "ECDSA", privateKeyPem: "x" })).rejects.toThrow(/"privateKeyPem" is not an input/);
        await expect(key({ algorithm: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" })).rejects.toThrow(/"algorithm" is unknown \(a preview value\)/);
        // The curve is validated even when the algorithm does not use it, as the schema does.
        await expect(key({ algorithm: "RSA", ecdsaCurve: "secp256k1" })).rejects.toThrow(/ecdsaCurve/);
    });
});

describe("tls hashForState", () => {
    it("hashes after Go's strings.TrimSpace (ASCII and Unicode spaces; invalid UTF-8 is not space)", () => {
        const sha1 = (b: Buffer) => crypto.createHash("sha1").update(b).digest("hex");
        expect(hashForState(Buffer.from("abc \n\t"))).toBe(sha1(Buffer.from("abc")));
        expect(hashForState(Buffer.from([0x30, 0x41, 0xc2, 0xa0]))).toBe(sha1(Buffer.from([0x30, 0x41])));
        expect(hashForState(Buffer.from([0x30, 0x41, 0xe3, 0x80, 0x80, 0x20]))).toBe(sha1(Buffer.from([0x30, 0x41])));
        expect(hashForState(Buffer.from([0x30, 0x41, 0xa0]))).toBe(sha1(Buffer.from([0x30, 0x41, 0xa0])));
        expect(hashForState(Buffer.alloc(0))).toBe("");
    });
});

describe("tls CertRequest", () => {
    it("is a PKCS#10 request signed by the key, with exactly the subject and SANs asked for", async () => {
        const keyPem = await p256();
        const subject = {
            commonName: "etcd1",
            organization: "etcd-ha",
            organizationalUnit: "lab",
            country: "DE",
            locality: "Berlin",
            province: "BE",
            streetAddresses: ["Main St 1"],
            postalCode: "10115",
            serialNumber: "42",
            emailAddress: "ops@example.org",
        };
        const r = await csr(keyPem, { subject, uris: ["spiffe://etcd/member/etcd1"], ipAddresses: ["127.0.0.1", "fd00::1"] });
        const pem = out(r, "certRequestPem");
        expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]+\n-----END CERTIFICATE REQUEST-----\n$/);
        const text = openssl(["req", "-noout", "-text"], pem);
        expect(reqVerifies(pem)).toBe(true);
        // A flipped signature bit must fail, so the check above means something.
        const der = Buffer.from(pem.split("\n").filter((l) => !l.startsWith("-----")).join(""), "base64");
        const tampered = Buffer.from(der);
        tampered[tampered.length - 5] ^= 0x01;
        expect(reqVerifies(`-----BEGIN CERTIFICATE REQUEST-----\n${tampered.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`)).toBe(false);
        expect(text).toContain("Subject: C = DE, ST = BE, L = Berlin, street = Main St 1, postalCode = 10115, O = etcd-ha, OU = lab, CN = etcd1, serialNumber = 42, emailAddress = ops@example.org");
        expect(extValue(text, "X509v3 Subject Alternative Name")).toBe("DNS:etcd1, DNS:etcd1.example, IP Address:127.0.0.1, IP Address:FD00:0:0:0:0:0:0:1, URI:spiffe://etcd/member/etcd1");
        expect(text).toContain("Signature Algorithm: ecdsa-with-SHA256");
        expect(r.outputs).toMatchObject({ keyAlgorithm: "ECDSA", privateKeyPem: keyPem, subject, dnsNames: ["etcd1", "etcd1.example"] });
        expect(r.secretOutputs).toEqual(["privateKeyPem"]);
        expect(r.id).toBe(hashForState(der));
    });

    it.each([
        ["P224", "ecdsa-with-SHA256"],
        ["P384", "ecdsa-with-SHA384"],
        ["P521", "ecdsa-with-SHA512"],
    ])("a %s key signs with %s, as Go's x509 chooses", async (curve, alg) => {
        const keyPem = out(await key({ algorithm: "ECDSA", ecdsaCurve: curve }), "privateKeyPem");
        const pem = out(await csr(keyPem), "certRequestPem");
        expect(openssl(["req", "-noout", "-text"], pem)).toContain(`Signature Algorithm: ${alg}`);
        expect(reqVerifies(pem)).toBe(true);
    });

    it("accepts what net.ParseIP accepts and writes IPv4 (also v4-mapped) as 4 bytes, like Go's x509", async () => {
        const keyPem = await p256();
        const pem = out(await csr(keyPem, { dnsNames: [], ipAddresses: ["::ffff:10.0.0.9", "1:2:3:4:5:6:7::", "::1.2.3.4", "192.168.0.1"], uris: ["HTTP://Host.example/p?q=a b#f"] }), "certRequestPem");
        expect(extValue(openssl(["req", "-noout", "-text"], pem), "X509v3 Subject Alternative Name")).toBe(
            "IP Address:10.0.0.9, IP Address:1:2:3:4:5:6:7:0, IP Address:0:0:0:0:0:0:102:304, IP Address:192.168.0.1, URI:http://Host.example/p?q=a b#f",
        );
    });

    it("refuses addresses net.ParseIP rejects, URIs url.Parse rejects, write-only and unknown inputs", async () => {
        const keyPem = await p256();
        for (const ip of ["10.0.0.256", "01.2.3.4", "fe80::1%eth0", "1:2:3:4:5:6:7:8::", "host.example"]) {
            await expect(csr(keyPem, { ipAddresses: [ip] })).rejects.toThrow(new RegExp(`Invalid IP address: Failed to parse "${ip.replace(/[.]/g, "\\.")}"`));
        }
        await expect(csr(keyPem, { ipAddresses: [""] })).rejects.toThrow(/ipAddresses\[0\]" must be at least 1 character/);
        await expect(csr(keyPem, { uris: ["http://a b/"] })).rejects.toThrow(/Invalid URI: .*invalid character " " in host name/);
        await expect(csr(keyPem, { uris: ["spiffe://x/%zz"] })).rejects.toThrow(/invalid URL escape "%zz"/);
        await expect(csr(keyPem, { uris: [":nope"] })).rejects.toThrow(/missing protocol scheme/);
        await expect(csr(keyPem, { privateKeyPemWo: keyPem })).rejects.toThrow(/"privateKeyPemWo" is not supported by the lab engine stand-in/);
        await expect(csr(keyPem, { subject: { CN: "x" } })).rejects.toThrow(/"subject.CN" is not a field of the subject block \(accepted: commonName/);
        await expect(csr("not a key")).rejects.toThrow(/Failed to parse private key PEM: failed to decode PEM block/);
    });
});

describe("tls SelfSignedCert", () => {
    let caKey: string;
    beforeAll(async () => {
        caKey = await p256();
    });

    it("a CA: CA:TRUE, SHA-1 subject key id, exactly the listed key usages and nothing else", async () => {
        const ca = await selfSignedCa(caKey);
        const text = certText(out(ca, "certPem"));
        expect(extensionNames(text)).toEqual(["X509v3 Key Usage critical", "X509v3 Basic Constraints critical", "X509v3 Subject Key Identifier"]);
        expect(extValue(text, "X509v3 Key Usage")).toBe("Digital Signature, Certificate Sign, CRL Sign");
        expect(extValue(text, "X509v3 Basic Constraints")).toBe("CA:TRUE");
        const publicKeyPem = crypto.createPublicKey(caKey).export({ type: "spki", format: "pem" }).toString();
        expect(extValue(text, "X509v3 Subject Key Identifier")).toBe(sha1Colon(ecPoint(publicKeyPem)));
        expect(text).toContain("Issuer: O = etcd-ha, CN = etcd-ca");
        expect(text).toContain("Subject: O = etcd-ha, CN = etcd-ca");
        expect(ca.outputs).toMatchObject({
            isCaCertificate: true,
            setSubjectKeyId: false,
            setAuthorityKeyId: false,
            earlyRenewalHours: 0,
            readyForRenewal: false,
            keyAlgorithm: "ECDSA",
            allowedUses: CA_USES,
            validityPeriodHours: 87600,
            privateKeyPem: caKey,
        });
        expect(ca.secretOutputs).toEqual(["privateKeyPem"]);
    });

    it("validity runs from now (no backdating) to now + validityPeriodHours", async () => {
        const before = Date.now();
        const c = await selfSignedCa(caKey, { validityPeriodHours: 5 });
        const after = Date.now();
        const x = new crypto.X509Certificate(out(c, "certPem"));
        const from = new Date(x.validFrom).getTime();
        expect(from).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
        expect(from).toBeLessThanOrEqual(after);
        expect(new Date(x.validTo).getTime() - from).toBe(5 * 3_600_000);
        const start = Date.parse(out(c, "validityStartTime"));
        expect(start).toBeGreaterThanOrEqual(before);
        expect(start).toBeLessThanOrEqual(after);
        expect(Date.parse(out(c, "validityEndTime")) - start).toBe(5 * 3_600_000);
        const fixed = await createTls(SELF, "ca", { privateKeyPem: caKey, validityPeriodHours: 1, allowedUses: [] }, { now: new Date("2030-01-02T03:04:05.678Z") });
        expect(fixed.outputs).toMatchObject({ validityStartTime: "2030-01-02T03:04:05.678Z", validityEndTime: "2030-01-02T04:04:05.678Z" });
        expect(new crypto.X509Certificate(out(fixed, "certPem")).validFrom).toBe("Jan  2 03:04:05 2030 GMT");
    });

    it("a random 128-bit serial, reported as the id in decimal", async () => {
        const a = await selfSignedCa(caKey);
        const b = await selfSignedCa(caKey);
        const serialA = BigInt(`0x${new crypto.X509Certificate(out(a, "certPem")).serialNumber}`);
        expect(a.id).toBe(serialA.toString(10));
        expect(serialA < 2n ** 128n).toBe(true);
        expect(serialA > 2n ** 64n).toBe(true);
        expect(a.id).not.toBe(b.id);
    });

    it("readyForRenewal: true when validity is 0 or earlyRenewalHours ≥ validityPeriodHours, else false", async () => {
        const ready = async (extra: Record<string, unknown>) => (await selfSignedCa(caKey, extra)).outputs.readyForRenewal;
        expect(await ready({ validityPeriodHours: 0 })).toBe(true);
        expect(await ready({ validityPeriodHours: 24, earlyRenewalHours: 24 })).toBe(true);
        expect(await ready({ validityPeriodHours: 24, earlyRenewalHours: 30 })).toBe(true);
        expect(await ready({ validityPeriodHours: 24, earlyRenewalHours: 23 })).toBe(false);
        expect(await ready({ validityPeriodHours: 24 })).toBe(false);
        const zero = await selfSignedCa(caKey, { validityPeriodHours: 0 });
        const x = new crypto.X509Certificate(out(zero, "certPem"));
        expect(x.validFrom).toBe(x.validTo);
    });

    it("setSubjectKeyId/setAuthorityKeyId: AKI equals the own SKI, and AKI without any SKI is an error", async () => {
        const leafKey = await p256();
        const base = { privateKeyPem: leafKey, subject: { commonName: "self" }, validityPeriodHours: 1, allowedUses: ["server_auth"] };
        const both = await createTls(SELF, "s", { ...base, setSubjectKeyId: true, setAuthorityKeyId: true });
        const text = certText(out(both, "certPem"));
        expect(extensionNames(text)).toEqual(["X509v3 Extended Key Usage", "X509v3 Basic Constraints critical", "X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier"]);
        expect(extValue(text, "X509v3 Authority Key Identifier").replace(/^keyid:/, "")).toBe(extValue(text, "X509v3 Subject Key Identifier"));
        expect(extValue(text, "X509v3 Basic Constraints")).toBe("CA:FALSE");
        await expect(createTls(SELF, "s", { ...base, setAuthorityKeyId: true })).rejects.toThrow(/Could not determine Authority Key Identifier/);
    });

    it("a CA needs a subject; maxPathLength follows Go (0 means no limit, only CAs may set one)", async () => {
        await expect(selfSignedCa(caKey, { subject: undefined })).rejects.toThrow(/Must contain at least one Distinguished Name when creating Certificate Authority/);
        await expect(selfSignedCa(caKey, { subject: {} })).rejects.toThrow(/at least one Distinguished Name/);
        expect(extValue(certText(out(await selfSignedCa(caKey, { maxPathLength: 2 }), "certPem")), "X509v3 Basic Constraints")).toBe("CA:TRUE, pathlen:2");
        const zero = await selfSignedCa(caKey, { maxPathLength: 0 });
        expect(extValue(certText(out(zero, "certPem")), "X509v3 Basic Constraints")).toBe("CA:TRUE");
        expect(zero.outputs.maxPathLength).toBe(0);
        await expect(selfSignedCa(caKey, { isCaCertificate: false, maxPathLength: 1 })).rejects.toThrow(/only CAs are allowed to specify MaxPathLen/);
    });

    it("an empty subject makes the SAN extension critical (RFC 5280, as Go marks it)", async () => {
        const c = await createTls(SELF, "s", { privateKeyPem: caKey, validityPeriodHours: 1, allowedUses: ["server_auth"], dnsNames: ["only.example"], ipAddresses: ["::ffff:10.0.0.1"] });
        const text = certText(out(c, "certPem"));
        expect(extensionNames(text)).toContain("X509v3 Subject Alternative Name critical");
        expect(extValue(text, "X509v3 Subject Alternative Name")).toBe("DNS:only.example, IP Address:10.0.0.1");
    });

    it("refuses allowedUses outside the provider's list (the SDK docs' camelCase too) and other bad inputs", async () => {
        await expect(selfSignedCa(caKey, { allowedUses: ["cert_signing", "serverAuth"] })).rejects.toThrow(
            /"allowedUses\[1\]" = "serverAuth" is not accepted; accepted values: any_extended, cert_signing, client_auth, code_signing/,
        );
        await expect(selfSignedCa(caKey, { allowedUses: undefined })).rejects.toThrow(/missing required input "allowedUses"/);
        await expect(selfSignedCa(caKey, { validityPeriodHours: -1 })).rejects.toThrow(/"validityPeriodHours" must be at least 0/);
        await expect(selfSignedCa(caKey, { earlyRenewalHours: -1 })).rejects.toThrow(/"earlyRenewalHours" must be at least 0/);
        await expect(selfSignedCa(caKey, { isCaCertificate: "true" })).rejects.toThrow(/"isCaCertificate" must be a boolean/);
        await expect(selfSignedCa(caKey, { subjectKeyId: true })).rejects.toThrow(/"subjectKeyId" is not an input/);
    });
});

describe("tls LocallySignedCert", () => {
    let caKey: string;
    let caPem: string;
    let leafKey: string;
    let csrPem: string;
    beforeAll(async () => {
        caKey = await p256();
        caPem = out(await selfSignedCa(caKey), "certPem");
        leafKey = await p256();
        csrPem = out(await csr(leafKey), "certRequestPem");
    });

    it("takes subject and SANs from the CSR only, AKI from the CA's SKI, and exactly the listed usages", async () => {
        const leaf = await signed(csrPem, caPem, caKey);
        const text = certText(out(leaf, "certPem"));
        expect(extensionNames(text)).toEqual([
            "X509v3 Key Usage critical",
            "X509v3 Extended Key Usage",
            "X509v3 Basic Constraints critical",
            "X509v3 Authority Key Identifier",
            "X509v3 Subject Alternative Name",
        ]);
        expect(extValue(text, "X509v3 Key Usage")).toBe("Digital Signature, Key Encipherment");
        expect(extValue(text, "X509v3 Extended Key Usage")).toBe("TLS Web Server Authentication, TLS Web Client Authentication");
        expect(extValue(text, "X509v3 Basic Constraints")).toBe("CA:FALSE");
        expect(extValue(text, "X509v3 Subject Alternative Name")).toBe("DNS:etcd1, DNS:etcd1.example, IP Address:127.0.0.1, IP Address:10.103.0.101");
        expect(text).toContain("Subject: O = etcd-ha, CN = etcd1");
        expect(text).toContain("Issuer: O = etcd-ha, CN = etcd-ca");
        expect(extValue(text, "X509v3 Authority Key Identifier").replace(/^keyid:/, "")).toBe(extValue(certText(caPem), "X509v3 Subject Key Identifier"));
        expect(new crypto.X509Certificate(out(leaf, "certPem")).publicKey.export({ type: "spki", format: "der" })).toEqual(
            crypto.createPublicKey(leafKey).export({ type: "spki", format: "der" }),
        );
        expect(leaf.outputs).toMatchObject({ caKeyAlgorithm: "ECDSA", certRequestPem: csrPem, caCertPem: caPem, caPrivateKeyPem: caKey, isCaCertificate: false, setSubjectKeyId: false });
        expect(leaf.secretOutputs).toEqual(["caPrivateKeyPem"]);
        expect(leaf.outputs).not.toHaveProperty("dnsNames");
    });

    it("openssl verify accepts the chain and rejects it against another CA with the same name", async () => {
        const leafPem = out(await signed(csrPem, caPem, caKey), "certPem");
        const leafFile = file("leaf.pem", leafPem);
        expect(openssl(["verify", "-CAfile", file("ca.pem", caPem), leafFile]).trim()).toBe(`${leafFile}: OK`);
        const otherCa = out(await selfSignedCa(await p256()), "certPem");
        const res = spawnSync("openssl", ["verify", "-CAfile", file("other-ca.pem", otherCa), leafFile], { encoding: "utf8" });
        expect(res.status).not.toBe(0);
        expect(res.stdout + res.stderr).toMatch(/unable to get local issuer certificate|signature failure/);
    });

    it("drops what Go does not copy: the CSR's emailAddress attribute; no AKI when the subject equals the CA's", async () => {
        const withEmail = out(await csr(leafKey, { subject: { commonName: "etcd1", emailAddress: "a@example.org" } }), "certRequestPem");
        expect(certText(out(await signed(withEmail, caPem, caKey), "certPem"))).toContain("Subject: CN = etcd1\n");
        const sameName = out(await csr(leafKey, { subject: { commonName: "etcd-ca", organization: "etcd-ha" } }), "certRequestPem");
        expect(extensionNames(certText(out(await signed(sameName, caPem, caKey), "certPem")))).not.toContain("X509v3 Authority Key Identifier");
    });

    it.each([
        [{ algorithm: "RSA" }, "sha256WithRSAEncryption"],
        [{ algorithm: "ECDSA", ecdsaCurve: "P384" }, "ecdsa-with-SHA384"],
        [{ algorithm: "ED25519" }, "ED25519"],
    ])("a CA key %p signs with %s", async (keyArgs, alg) => {
        const k = out(await key(keyArgs), "privateKeyPem");
        const ca = out(await selfSignedCa(k), "certPem");
        const leaf = await signed(csrPem, ca, k);
        expect(certText(out(leaf, "certPem"))).toContain(`Signature Algorithm: ${alg}`);
        expect(leaf.outputs.caKeyAlgorithm).toBe(keyArgs.algorithm);
        expect(openssl(["verify", "-CAfile", file("ca-alg.pem", ca), file("leaf-alg.pem", out(leaf, "certPem"))])).toMatch(/: OK\n$/);
    });

    it("refuses a CA key that does not match the CA certificate, and PEMs of the wrong type", async () => {
        await expect(signed(csrPem, caPem, await p256())).rejects.toThrow(/x509: provided PrivateKey doesn't match parent's PublicKey/);
        await expect(signed(caPem, caPem, caKey)).rejects.toThrow(/invalid PEM type - expected "CERTIFICATE REQUEST", got "CERTIFICATE"/);
        await expect(signed(csrPem, csrPem, caKey)).rejects.toThrow(/invalid PEM type - expected "CERTIFICATE", got "CERTIFICATE REQUEST"/);
        await expect(signed(csrPem, caPem, caKey, { caPrivateKeyPemWo: caKey })).rejects.toThrow(/not supported by the lab engine stand-in/);
        await expect(signed(csrPem, caPem, caKey, { dnsNames: ["x"] })).rejects.toThrow(/"dnsNames" is not an input of this resource/);
    });
});

describe("tls certificates in a real handshake", () => {
    interface Pair {
        key: string;
        cert: string;
    }
    let caPem: string;
    let server: Pair;
    let client: Pair;
    let serverOnly: Pair;
    beforeAll(async () => {
        const caKey = await p256();
        caPem = out(await selfSignedCa(caKey), "certPem");
        const issue = async (cn: string, uses: string[], ips: string[]): Promise<Pair> => {
            const k = await p256();
            const req = out(await createTls(CSR, cn, { privateKeyPem: k, subject: { commonName: cn }, ipAddresses: ips }), "certRequestPem");
            return { key: k, cert: out(await signed(req, caPem, caKey, { allowedUses: uses }), "certPem") };
        };
        server = await issue("etcd1", ["digital_signature", "key_encipherment", "server_auth"], ["127.0.0.1"]);
        client = await issue("etcd-admin", ["digital_signature", "key_encipherment", "client_auth"], []);
        serverOnly = await issue("not-a-client", ["digital_signature", "key_encipherment", "server_auth"], []);
    });

    /** One mutual-TLS exchange; reports what each side concluded about the other. */
    async function handshake(clientPair: Pair): Promise<{ clientAuthorized: boolean; serverAuthorized: boolean; serverError: string; peer: string }> {
        let seen = { serverAuthorized: false, serverError: "", peer: "" };
        const srv = tls.createServer({ key: server.key, cert: server.cert, ca: [caPem], requestCert: true, rejectUnauthorized: false }, (sock) => {
            seen = { serverAuthorized: sock.authorized, serverError: String(sock.authorizationError ?? ""), peer: String(sock.getPeerCertificate().subject?.CN ?? "") };
            sock.end("hello");
        });
        await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
        const port = (srv.address() as { port: number }).port;
        try {
            const clientAuthorized = await new Promise<boolean>((resolve, reject) => {
                const c = tls.connect({ host: "127.0.0.1", port, ca: [caPem], key: clientPair.key, cert: clientPair.cert }, () => {
                    const ok = c.authorized;
                    c.on("data", () => undefined);
                    c.on("end", () => resolve(ok));
                });
                c.on("error", reject);
            });
            return { clientAuthorized, ...seen };
        } finally {
            await new Promise<void>((resolve) => srv.close(() => resolve()));
        }
    }

    it("server and client certificates from the stand-in authenticate each other against the CA", async () => {
        const r = await handshake(client);
        expect(r).toEqual({ clientAuthorized: true, serverAuthorized: true, serverError: "", peer: "etcd-admin" });
    });

    it("a certificate without client_auth is refused as a client certificate", async () => {
        const r = await handshake(serverOnly);
        expect(r.serverAuthorized).toBe(false);
        expect(r.serverError).toBe("INVALID_PURPOSE"); // OpenSSL: "unsupported certificate purpose"
    });
});

describe("tls type dispatch", () => {
    it("handles the four resource types and refuses others honestly", async () => {
        expect([...TLS_TYPES].sort()).toEqual([CSR, LOCAL, KEY, SELF].sort());
        await expect(createTls("tls:index/sshKeyScan:SshKeyScan", "x", {})).rejects.toThrow(/not supported by the lab engine stand-in/);
        await expect(createTls(RSTRING, "x", { length: 4 })).rejects.toThrow(/not a tls resource type/);
    });
});

describe("random RandomString / RandomPassword", () => {
    const classes = (s: string) => ({
        upper: [...s].filter((c) => /[A-Z]/.test(c)).length,
        lower: [...s].filter((c) => /[a-z]/.test(c)).length,
        numeric: [...s].filter((c) => /[0-9]/.test(c)).length,
        special: [...s].filter((c) => !/[A-Za-z0-9]/.test(c)).length,
    });
    const result = (r: ProviderResult) => out(r, "result");

    it("RandomString: the length asked for, from the default alphabet; id = result, not secret; defaults echoed", () => {
        const r = createRandom(RSTRING, "s", { length: 300 });
        expect(result(r)).toHaveLength(300);
        expect([...result(r)].every((c) => /[A-Za-z0-9]/.test(c) || DEFAULT_SPECIAL_CHARS.includes(c))).toBe(true);
        expect(DEFAULT_SPECIAL_CHARS).toBe("!@#$%&*()-_=+[]{}<>:?");
        expect(r.id).toBe(result(r));
        expect(r.secretOutputs).toEqual([]);
        expect(r.outputs).toEqual({
            length: 300,
            upper: true,
            lower: true,
            numeric: true,
            number: true,
            special: true,
            minUpper: 0,
            minLower: 0,
            minNumeric: 0,
            minSpecial: 0,
            result: result(r),
        });
    });

    it("honours disabled classes, overrideSpecial and the deprecated number alias", () => {
        expect(classes(result(createRandom(RSTRING, "s", { length: 300, special: false }))).special).toBe(0);
        expect(result(createRandom(RSTRING, "s", { length: 300, upper: false, lower: false, special: false }))).toMatch(/^[0-9]{300}$/);
        expect(result(createRandom(RSTRING, "s", { length: 300, upper: false, lower: false, numeric: false, overrideSpecial: "-_" }))).toMatch(/^[-_]{300}$/);
        const noDigits = createRandom(RSTRING, "s", { length: 300, number: false });
        expect(classes(result(noDigits)).numeric).toBe(0);
        expect(noDigits.outputs).toMatchObject({ number: false, numeric: false });
    });

    it("honours the min counts (drawn even from a disabled class, as the provider does) and shuffles them in", () => {
        for (let i = 0; i < 25; i++) {
            const c = classes(result(createRandom(RSTRING, "s", { length: 8, minUpper: 2, minLower: 2, minNumeric: 2, minSpecial: 2 })));
            expect(c).toEqual({ upper: 2, lower: 2, numeric: 2, special: 2 });
        }
        const forced = result(createRandom(RSTRING, "s", { length: 10, upper: false, minUpper: 3 }));
        expect(classes(forced).upper).toBe(3);
        // One digit and one capital only from the min counts: without the shuffle they would always come in map order.
        const onlyMins = { length: 2, minNumeric: 1, minUpper: 1, upper: false, lower: false, numeric: false, special: false };
        const orders = new Set(Array.from({ length: 40 }, () => result(createRandom(RSTRING, "s", onlyMins)).replace(/[0-9]/, "9").replace(/[A-Z]/, "A")));
        expect([...orders].sort()).toEqual(["9A", "A9"]);
    });

    it("differs between calls", () => {
        const results = new Set(Array.from({ length: 20 }, () => result(createRandom(RSTRING, "s", { length: 16 }))));
        expect(results.size).toBe(20);
    });

    it("RandomPassword: id none, result and bcryptHash secret, bcryptHash a $2a$10$ hash that libxcrypt verifies", () => {
        const r = createRandom(RPASSWORD, "p", { length: 24, keepers: { host: "etcd1" } });
        expect(r.id).toBe("none");
        expect(r.secretOutputs).toEqual(["bcryptHash", "result"]);
        expect(r.outputs.keepers).toEqual({ host: "etcd1" });
        const hash = out(r, "bcryptHash");
        expect(hash).toMatch(/^\$2a\$10\$[./A-Za-z0-9]{53}$/);
        expect(crypt(result(r), hash)).toBe(hash);
        expect(crypt(`${result(r)}x`, hash)).not.toBe(hash);
    });

    it("bcrypt matches libxcrypt for a fixed salt and hashes only the first 72 bytes, as the provider does", () => {
        const salt = Buffer.from("00112233445566778899aabbccddeeff", "hex");
        const h = bcryptHash(Buffer.from("U*U"), 5, salt);
        expect(crypt("U*U", h)).toBe(h);
        const long = createRandom(RPASSWORD, "p", { length: 100 });
        expect(crypt(result(long).slice(0, 72), out(long, "bcryptHash"))).toBe(out(long, "bcryptHash"));
        expect(() => bcryptHash(Buffer.alloc(73, 0x61))).toThrow(/exceeds 72 bytes/);
    });

    it("refuses what the schema refuses, and unknown keys and types", () => {
        expect(() => createRandom(RSTRING, "s", {})).toThrow(/"s": missing required input "length"/);
        expect(() => createRandom(RSTRING, "s", { length: 0 })).toThrow(/"length" must be at least 1/);
        expect(() => createRandom(RSTRING, "s", { length: 3, minUpper: 2, minLower: 2 })).toThrow(/at least the sum of minUpper, minLower, minNumeric and minSpecial \(4\)/);
        expect(() => createRandom(RSTRING, "s", { length: 8, number: true, numeric: false })).toThrow(/"number" \(deprecated\) and "numeric" are both set with different values/);
        expect(() => createRandom(RSTRING, "s", { lenght: 8 })).toThrow(/"lenght" is not an input of this resource \(accepted: keepers, length, lower/);
        expect(() => createRandom(RSTRING, "s", { length: 8, keepers: { a: 1 } })).toThrow(/"keepers.a" must be a string/);
        expect(() => createRandom(RSTRING, "s", { length: 8, upper: false, lower: false, numeric: false, special: false })).toThrow(/charSet is empty/);
        expect(() => createRandom("random:index/randomId:RandomId", "i", { byteLength: 8 })).toThrow(/not supported by the lab engine stand-in/);
        expect(() => createRandom(KEY, "k", {})).toThrow(/not a random resource type/);
        expect([...RANDOM_TYPES].sort()).toEqual([RPASSWORD, RSTRING]);
    });
});
