import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/index.js';
import { temporalOptions } from '../../platform/connect.js';

// Temporal Cloud and self-hosted clusters behind TLS: an API key (TLS implied) or mTLS with a
// client certificate (TEMPORAL_TLS_CERT / _KEY, optional _CA and _SERVER_NAME).

const dir = mkdtempSync(join(tmpdir(), 'ctem-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const cert = file('client.pem', '-----BEGIN CERTIFICATE-----\ncert\n-----END CERTIFICATE-----\n');
const key = file('client.key', '-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n');
const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n');
const cloud = 'my-ns.a1b2c.tmprl.cloud:7233';

describe('Temporal connection settings', () => {
  it('connects in plain text to the embedded dev server by default', () => {
    const options = temporalOptions(loadConfig({}), '127.0.0.1:7233');
    expect(options).toEqual({ address: '127.0.0.1:7233' });
  });

  it('an API key implies TLS with the system roots', () => {
    const options = temporalOptions(loadConfig({ TEMPORAL_ADDRESS: cloud, TEMPORAL_API_KEY: 'secret-key' }), cloud);
    expect(options).toEqual({ address: cloud, tls: true, apiKey: 'secret-key' });
  });

  it('mTLS: the client certificate pair, the CA and the server name from their files', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: cloud, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key, TEMPORAL_TLS_CA: ca, TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' });
    expect(config.temporal.tls).toBe(true);
    const options = temporalOptions(config, cloud);
    const tls = options.tls as { clientCertPair: { crt: Buffer; key: Buffer }; serverRootCACertificate: Buffer; serverNameOverride: string };
    expect(tls.clientCertPair.crt.toString()).toContain('cert');
    expect(tls.clientCertPair.key.toString()).toContain('PRIVATE KEY');
    expect(tls.serverRootCACertificate.toString()).toContain('ca');
    expect(tls.serverNameOverride).toBe('temporal.internal');
    expect(options).not.toHaveProperty('apiKey');
  });

  it('refuses a certificate without its key, and names a missing file', () => {
    expect(() => loadConfig({ TEMPORAL_TLS_CERT: cert })).toThrow(ConfigError);
    expect(() => loadConfig({ TEMPORAL_TLS_CERT: cert })).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together/);
    expect(() => loadConfig({ TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: join(dir, 'missing.key') })).toThrow(/TEMPORAL_TLS_KEY: no such file: .*missing\.key/);
  });
});
