/**
 * What the offline plan's mock engine answers for each resource: its inputs plus stand-in values for the
 * outputs the program reads (certificate and key PEMs, random results, command stdout). The stand-ins
 * are labelled as such and are not key material; the lab replaces this with real providers.
 */
import * as pulumi from "@pulumi/pulumi";

const pem = (label: string, body: string) => `-----BEGIN ${label}-----\nplan-placeholder:${body}\n-----END ${label}-----\n`;

/** The state a planned resource reports: inputs plus stand-in outputs by type. */
export function planState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
    switch (type) {
        case "tls:index/privateKey:PrivateKey": {
            const label = inputs.algorithm === "RSA" ? "RSA PRIVATE KEY" : inputs.algorithm === "ED25519" ? "PRIVATE KEY" : "EC PRIVATE KEY";
            const sshType = inputs.algorithm === "RSA" ? "ssh-rsa" : inputs.algorithm === "ED25519" ? "ssh-ed25519" : "ecdsa-sha2-nistp256";
            return {
                ...inputs,
                privateKeyPem: pem(label, name),
                privateKeyPemPkcs8: pem("PRIVATE KEY", name),
                privateKeyOpenssh: pem("OPENSSH PRIVATE KEY", name),
                publicKeyPem: pem("PUBLIC KEY", name),
                publicKeyOpenssh: `${sshType} AAAA${Buffer.from(`plan-placeholder:${name}`).toString("base64")}\n`,
            };
        }
        case "tls:index/selfSignedCert:SelfSignedCert":
        case "tls:index/locallySignedCert:LocallySignedCert":
            return { ...inputs, certPem: pem("CERTIFICATE", name), readyForRenewal: false };
        case "tls:index/certRequest:CertRequest":
            return { ...inputs, certRequestPem: pem("CERTIFICATE REQUEST", name) };
        case "random:index/randomString:RandomString":
            return { ...inputs, result: "p".repeat(Number(inputs.length ?? 16)) };
        case "command:remote:Command":
            return { ...inputs, stdout: `plan-placeholder:${name}`, stderr: "" };
        default:
            return inputs;
    }
}

/** A mock `newResource` answering with `planState`. */
export async function planNewResource(args: pulumi.runtime.MockResourceArgs): Promise<pulumi.runtime.MockResourceResult> {
    return { id: args.custom ? `${args.name}-id` : undefined, state: planState(args.type, args.name, args.inputs as Record<string, unknown>) };
}
