// Ingest benchmark: realistic Trivy reports (one per image, real CVE ids) through the platform's own
// path (connector -> ingestFindings), a re-ingest of the same reports, and a raw COPY of the same
// rows as the yardstick, all against one PostgreSQL in one run.
//
//   npm run bench:ingest -- [--findings N] [--assets N] [--concurrency N] [--json] [--keep] [--profile]
//   npm run bench:ingest -- --cluster [--apis 2] [--workers 2] [--uploads 8] [--max-seconds S] [--findings N] ...
//
// --cluster: the production shape instead (platform/cluster.ts, needs `npm run temporal-server:ensure`):
// embedded PostgreSQL, a real Temporal server, N `ctem worker` and M `ctem api` processes on free
// ports, started untimed. Timed: every report uploaded through the APIs round-robin (POST
// /api/v1/scans, `--uploads` in flight) until every scan is completed or failed (ingest, score,
// mobilize on the workers). Then, with the cluster stopped, the same reports are ingested in-process
// into a fresh database (as without --cluster), and findings, sources and assets are compared (counts and a digest of their
// contents). Exit 1 when they differ, a scan failed, or the run took longer than --max-seconds.
//
// DATABASE_URL set: a fresh database is created on that server (and dropped afterwards); otherwise
// an embedded PostgreSQL runs in a temp dir. CTEM_CORPUS_DIR (default ../shared/corpus) supplies
// CVE ids from the EPSS feed when present; a built-in list of real CVE ids otherwise.
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import postgres from 'postgres';
import { connectorFor } from '../discovery/connectors/index.js';
import { componentName, trivyEcosystem } from '../discovery/connectors/common/identity.js';
import { connectDatabase, migrateDatabase } from '../db/client.js';
import { ingestFindings, type IngestCounts } from '../discovery/store/ingest.js';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../config/index.js';
import { freeTemporalPorts, startCluster, type Cluster } from '../platform/cluster.js';
import { freePort } from '../platform/ports.js';
import { parseBenchArgs } from './bench-args.js';
import { openBenchDatabase, type BenchDatabase } from './bench-database.js';

interface Options {
  findings: number;
  assets: number;
  concurrency: number;
  json: boolean;
  keep: boolean;
  profile: boolean;
  /** Upload through the APIs of a cluster started for the run (platform/cluster.ts) instead of ingesting in-process. */
  cluster: boolean;
  apis: number;
  workers: number;
  /** Uploads in flight at once, over all APIs (--cluster). */
  uploads: number;
  /** --cluster: exit non-zero when the last scan completes later than this. */
  maxSeconds?: number;
  /** Internal: write the reports into this directory, print what was written, exit. */
  generateInto?: string;
}

function parseArgs(argv: string[]): Options {
  const options = parseBenchArgs<Options>(
    argv,
    {
      findings: 'count', assets: 'count', concurrency: 'count', json: 'flag', keep: 'flag', profile: 'flag',
      cluster: 'flag', apis: 'count', workers: 'count', uploads: 'count', maxSeconds: 'count', generateInto: 'text',
    },
    { findings: 1_000_000, assets: 2_000, concurrency: 2, json: false, keep: false, profile: false, cluster: false, apis: 2, workers: 2, uploads: 8 },
  );
  if (!options.cluster && (argv.includes('--apis') || argv.includes('--workers') || argv.includes('--uploads') || argv.includes('--max-seconds'))) {
    throw new Error('--apis, --workers, --uploads and --max-seconds apply to --cluster only');
  }
  if (options.assets > options.findings) options.assets = options.findings;
  return options;
}

// ---------------------------------------------------------------------------------------------
// Report generation (untimed). Deterministic: the same options write the same reports.

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Real CVE ids (sampled from FIRST's EPSS feed), for when the corpus is not at hand.
const BUILTIN_CVES: Record<string, string> = {
  2015: '0278 0316 0435 0550 0874 1119 1225 1236 1259 1278 1437 1801 2181 2812 2928 3203 3290 4769 5008 5169 5727 5789 5818 6686 6854 7191 8435 8522 9244 10105',
  2016: '0239 0315 0502 0605 0977 1232 1813 1946 2352 4052 4327 4896 4992 5029 5791 6113 6416 7663 7842 8694 9187 9276 9388 9491 10189 10325 10460 10477 10668 11074',
  2017: '0212 0250 0453 2653 3244 3797 5075 5384 6050 6065 6528 6674 8359 8548 8980 9217 10158 10366 10903 10917 11226 11569 11905 12695 16264 16314 16343 17751 18072 20092',
  2018: '0285 0459 0871 2683 2702 2998 3138 5310 5553 6182 6528 7855 8245 10092 10428 10475 10726 11170 11561 12594 15755 15884 15922 17050 17401 18815 19629 20354 20728 21003',
  2019: '0375 0658 1150 1850 2456 2768 3003 4430 4457 5311 5454 7430 7764 8242 8552 9578 9858 10078 10441 10785 10796 11042 11538 11935 12751 16309 16409 16466 18213 18782',
  2020: '0648 0786 1284 1475 2036 3555 3843 5557 5883 7621 9368 10272 10566 10876 10890 11119 11765 12149 13547 17153 17429 17463 22164 26521 27219 27737 28695 28759 36404 36655',
  2021: '1191 1384 1887 2229 3969 20201 20665 20678 21010 21309 21732 22740 26700 26809 26866 28165 28495 32542 32937 33503 34491 34504 34976 37964 38263 38929 39320 40447 42389 44445',
  2022: '0377 0577 1032 1273 1491 1505 1773 4897 20772 21318 25347 25438 25487 26932 27294 28837 30114 30526 30926 31660 31679 35403 35745 36444 36756 38198 38652 40195 42161 48216',
  2023: '0386 0777 4116 4634 6208 6827 20076 21287 21782 21793 22264 22924 23939 25657 31740 32011 32047 34455 35339 37511 39007 41207 42068 42801 44808 44832 45886 46348 51100 51634',
  2024: '0917 4033 6547 7847 8131 8809 10899 11279 11546 11557 11904 12536 13502 25626 25807 25924 28247 28983 30106 34588 35538 36188 37400 37419 40410 41119 42412 42914 44717 45506',
  2025: '1414 2512 2775 3123 3746 4556 4973 5623 10225 10546 11783 13426 20276 21217 21301 21312 21346 21371 22469 24238 25535 28203 29452 31131 31794 36072 43559 50739 61591 66644',
};

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const EPSS_FILE = join('intel', 'epss', 'epss_scores-2026-01-30.csv.gz');

/** CVE ids from the EPSS feed (those an image scan is likely to meet: 2015 on), else the built-in list. */
function loadCves(): { ids: string[]; from: string } {
  const corpus = resolve(process.env.CTEM_CORPUS_DIR ?? join(repoRoot, '..', 'shared', 'corpus'));
  const feed = join(corpus, EPSS_FILE);
  if (existsSync(feed)) {
    const ids: string[] = [];
    for (const line of gunzipSync(readFileSync(feed)).toString('utf8').split('\n')) {
      const match = /^(CVE-(\d{4})-\d+),/.exec(line);
      if (match && Number(match[2]) >= 2015) ids.push(match[1]!);
    }
    if (ids.length > 1000) return { ids, from: `EPSS feed (${EPSS_FILE}, ${ids.length} CVE ids since 2015)` };
  }
  const ids = Object.entries(BUILTIN_CVES).flatMap(([year, list]) => list.split(' ').map((n) => `CVE-${year}-${n}`));
  return { ids, from: `built-in list (${ids.length} real CVE ids)` };
}

interface Distro {
  family: string;
  name: string;
  type: string;
  purlType: string;
  source: { ID: string; Name: string; URL: string };
  packages: Array<[name: string, version: string, fixed: string]>;
}

const DEBIAN_PACKAGES: Distro['packages'] = [
  ['libc6', '2.36-9+deb12u4', '2.36-9+deb12u7'], ['libc-bin', '2.36-9+deb12u4', '2.36-9+deb12u7'], ['libssl3', '3.0.11-1~deb12u2', '3.0.15-1~deb12u1'],
  ['openssl', '3.0.11-1~deb12u2', '3.0.15-1~deb12u1'], ['zlib1g', '1:1.2.13.dfsg-1', '1:1.2.13.dfsg-1+deb12u1'], ['curl', '7.88.1-10+deb12u5', '7.88.1-10+deb12u8'],
  ['libcurl4', '7.88.1-10+deb12u5', '7.88.1-10+deb12u8'], ['libxml2', '2.9.14+dfsg-1.3~deb12u1', '2.9.14+dfsg-1.3~deb12u2'], ['perl-base', '5.36.0-7+deb12u1', ''],
  ['bash', '5.2.15-2+b2', ''], ['coreutils', '9.1-1', ''], ['tar', '1.34+dfsg-1.2+deb12u1', ''], ['gzip', '1.12-1', ''], ['systemd', '252.22-1~deb12u1', '252.30-1~deb12u2'],
  ['libsystemd0', '252.22-1~deb12u1', '252.30-1~deb12u2'], ['libudev1', '252.22-1~deb12u1', '252.30-1~deb12u2'], ['ncurses-base', '6.4-4', '6.4-4+deb12u1'],
  ['libncursesw6', '6.4-4', '6.4-4+deb12u1'], ['libtinfo6', '6.4-4', '6.4-4+deb12u1'], ['libsqlite3-0', '3.40.1-2', '3.40.1-2+deb12u1'], ['libgnutls30', '3.7.9-2+deb12u2', '3.7.9-2+deb12u3'],
  ['libkrb5-3', '1.20.1-2+deb12u1', '1.20.1-2+deb12u2'], ['libgssapi-krb5-2', '1.20.1-2+deb12u1', '1.20.1-2+deb12u2'], ['libk5crypto3', '1.20.1-2+deb12u1', '1.20.1-2+deb12u2'],
  ['libpcre2-8-0', '10.42-1', ''], ['libexpat1', '2.5.0-1', '2.5.0-1+deb12u1'], ['libtiff6', '4.5.0-6+deb12u1', ''], ['libpng16-16', '1.6.39-2', ''],
  ['libjpeg62-turbo', '1:2.1.5-2', ''], ['libfreetype6', '2.12.1+dfsg-5', '2.12.1+dfsg-5+deb12u3'], ['libx11-6', '2:1.8.4-2+deb12u1', '2:1.8.4-2+deb12u2'],
  ['git', '1:2.39.2-1.1', '1:2.39.5-0+deb12u1'], ['openssh-client', '1:9.2p1-2+deb12u2', '1:9.2p1-2+deb12u3'], ['login', '1:4.13+dfsg1-1+b1', ''], ['passwd', '1:4.13+dfsg1-1+b1', ''],
  ['util-linux', '2.38.1-5+b1', '2.38.1-5+deb12u1'], ['libblkid1', '2.38.1-5+b1', '2.38.1-5+deb12u1'], ['libmount1', '2.38.1-5+b1', '2.38.1-5+deb12u1'], ['libuuid1', '2.38.1-5+b1', '2.38.1-5+deb12u1'],
  ['e2fsprogs', '1.47.0-2', ''], ['libext2fs2', '1.47.0-2', ''], ['dpkg', '1.21.22', ''], ['apt', '2.6.1', ''], ['libapt-pkg6.0', '2.6.1', ''], ['gpgv', '2.2.40-1.1', ''],
  ['libgcrypt20', '1.10.1-3', ''], ['libtasn1-6', '4.19.0-2', '4.19.0-2+deb12u1'], ['libp11-kit0', '0.24.1-2', ''], ['libidn2-0', '2.3.3-1+b1', ''], ['libzstd1', '1.5.4+dfsg2-5', ''],
  ['liblzma5', '5.4.1-0.2', ''], ['libbz2-1.0', '1.0.8-5+b1', ''], ['libdb5.3', '5.3.28+dfsg2-1', ''], ['libselinux1', '3.4-1+b6', ''], ['libaudit1', '1:3.0.9-1', ''],
  ['libcap2', '1:2.66-4', '1:2.66-4+deb12u1'], ['libpam0g', '1.5.2-6+deb12u1', ''], ['libpam-modules', '1.5.2-6+deb12u1', ''], ['libseccomp2', '2.5.4-1+b3', ''], ['libgmp10', '2:6.2.1+dfsg1-1.1', ''],
  ['libnettle8', '3.8.1-2', ''], ['libhogweed6', '3.8.1-2', ''], ['libldap-2.5-0', '2.5.13+dfsg-5', ''], ['libsasl2-2', '2.1.28+dfsg-10', ''], ['libnghttp2-14', '1.52.0-1+deb12u1', '1.52.0-1+deb12u2'],
  ['librtmp1', '2.4+20151223.gitfa8646d.1-2+b2', ''], ['libssh2-1', '1.10.0-3+b1', ''], ['libpsl5', '0.21.2-1', ''], ['libbrotli1', '1.0.9-2+b6', ''], ['libxslt1.1', '1.1.35-1', '1.1.35-1+deb12u1'],
  ['libicu72', '72.1-3', '72.1-3+deb12u1'], ['python3.11', '3.11.2-6', '3.11.2-6+deb12u3'], ['libpython3.11-minimal', '3.11.2-6', '3.11.2-6+deb12u3'], ['perl', '5.36.0-7+deb12u1', ''],
  ['libperl5.36', '5.36.0-7+deb12u1', ''], ['imagemagick', '8:6.9.11.60+dfsg-1.6', '8:6.9.11.60+dfsg-1.6+deb12u2'], ['libaom3', '3.6.0-1', '3.6.0-1+deb12u1'], ['libde265-0', '1.0.11-1', '1.0.11-1+deb12u2'],
  ['libheif1', '1.15.1-1', '1.15.1-1+deb12u1'], ['libwebp7', '1.2.4-0.2+deb12u1', ''], ['libopenjp2-7', '2.5.0-2', '2.5.0-2+deb12u1'], ['libharfbuzz0b', '6.0.0+dfsg-3', ''], ['libcairo2', '1.16.0-7', ''],
  ['libglib2.0-0', '2.74.6-2', '2.74.6-2+deb12u3'], ['libdbus-1-3', '1.14.10-1~deb12u1', ''], ['libsqlite3-dev', '3.40.1-2', '3.40.1-2+deb12u1'], ['libpq5', '15.6-0+deb12u1', '15.8-0+deb12u1'],
  ['libmariadb3', '1:10.11.6-0+deb12u1', ''], ['libgnutls-dane0', '3.7.9-2+deb12u2', '3.7.9-2+deb12u3'], ['libcups2', '2.4.2-3+deb12u5', '2.4.2-3+deb12u8'], ['libavahi-client3', '0.8-10', ''],
];

const ALPINE_PACKAGES: Distro['packages'] = [
  ['busybox', '1.36.1-r15', '1.36.1-r20'], ['busybox-binsh', '1.36.1-r15', '1.36.1-r20'], ['libcrypto3', '3.1.4-r5', '3.1.7-r1'], ['libssl3', '3.1.4-r5', '3.1.7-r1'],
  ['musl', '1.2.4_git20230717-r4', ''], ['musl-utils', '1.2.4_git20230717-r4', ''], ['zlib', '1.3-r2', '1.3.1-r0'], ['libcurl', '8.5.0-r0', '8.9.0-r0'], ['curl', '8.5.0-r0', '8.9.0-r0'],
  ['libxml2', '2.11.6-r0', '2.11.8-r0'], ['expat', '2.5.0-r2', '2.6.3-r0'], ['sqlite-libs', '3.44.2-r0', ''], ['ncurses-libs', '6.4_p20231125-r0', ''], ['libexpat', '2.5.0-r2', '2.6.3-r0'],
  ['apk-tools', '2.14.0-r5', ''], ['ssl_client', '1.36.1-r15', '1.36.1-r20'], ['libgcc', '13.2.1_git20231014-r0', ''], ['libstdc++', '13.2.1_git20231014-r0', ''], ['krb5-libs', '1.21.2-r0', '1.21.3-r0'],
  ['nghttp2-libs', '1.58.0-r0', '1.62.1-r0'], ['openssh-client-default', '9.6_p1-r0', '9.6_p1-r1'], ['git', '2.43.0-r0', '2.43.5-r0'], ['libx11', '1.8.7-r0', '1.8.10-r0'], ['tiff', '4.6.0t-r0', ''],
  ['libpng', '1.6.40-r0', ''], ['freetype', '2.13.2-r0', ''], ['libwebp', '1.3.2-r0', ''], ['python3', '3.11.8-r0', '3.11.10-r0'], ['gnutls', '3.8.3-r0', '3.8.4-r0'], ['pcre2', '10.42-r2', ''],
];

const DISTROS: Distro[] = [
  { family: 'debian', name: '12.5', type: 'debian', purlType: 'deb', source: { ID: 'debian', Name: 'Debian Security Tracker', URL: 'https://salsa.debian.org/security-tracker-team/security-tracker' }, packages: DEBIAN_PACKAGES },
  { family: 'ubuntu', name: '22.04', type: 'ubuntu', purlType: 'deb', source: { ID: 'ubuntu', Name: 'Ubuntu CVE Tracker', URL: 'https://git.launchpad.net/ubuntu-cve-tracker' }, packages: DEBIAN_PACKAGES.map(([n, v, f]) => [n, v.replace(/\+deb12u(\d)/, 'ubuntu0.22.04.$1'), f.replace(/\+deb12u(\d)/, 'ubuntu0.22.04.$1')]) },
  { family: 'alpine', name: '3.19.1', type: 'alpine', purlType: 'apk', source: { ID: 'alpine', Name: 'Alpine Secdb', URL: 'https://secdb.alpinelinux.org/' }, packages: ALPINE_PACKAGES },
];

interface LangEcosystem {
  type: string;
  target: (image: string) => string;
  source: { ID: string; Name: string; URL: string };
  packages: Array<[name: string, version: string, fixed: string]>;
  path?: (name: string, version: string) => string;
}

const LANGS: LangEcosystem[] = [
  {
    type: 'jar', target: () => 'Java', source: { ID: 'ghsa', Name: 'GitHub Security Advisory maven', URL: 'https://github.com/advisories?query=type%3Areviewed+ecosystem%3Amaven' },
    packages: [
      ['org.apache.logging.log4j:log4j-core', '2.14.1', '2.17.1'], ['com.fasterxml.jackson.core:jackson-databind', '2.12.3', '2.13.4.2'], ['org.springframework:spring-web', '5.3.20', '5.3.32'],
      ['org.springframework:spring-webmvc', '5.3.20', '5.3.33'], ['io.netty:netty-codec-http', '4.1.77.Final', '4.1.108.Final'], ['io.netty:netty-handler', '4.1.77.Final', '4.1.94.Final'],
      ['org.yaml:snakeyaml', '1.30', '2.0'], ['com.google.guava:guava', '30.1-jre', '32.0.0-android'], ['org.apache.tomcat.embed:tomcat-embed-core', '9.0.63', '9.0.86'],
      ['commons-io:commons-io', '2.6', '2.14.0'], ['org.apache.commons:commons-text', '1.9', '1.10.0'], ['com.h2database:h2', '1.4.200', '2.2.220'], ['ch.qos.logback:logback-core', '1.2.11', '1.2.13'],
      ['org.bouncycastle:bcprov-jdk15on', '1.69', '1.78'], ['com.nimbusds:nimbus-jose-jwt', '9.22', '9.37.2'], ['org.postgresql:postgresql', '42.3.3', '42.3.9'], ['net.minidev:json-smart', '2.4.7', '2.4.9'],
    ],
    path: (name, version) => `app/lib/${name.split(':')[1]}-${version}.jar`,
  },
  {
    type: 'python-pkg', target: () => 'Python', source: { ID: 'ghsa', Name: 'GitHub Security Advisory pip', URL: 'https://github.com/advisories?query=type%3Areviewed+ecosystem%3Apip' },
    packages: [
      ['Django', '3.2.4', '3.2.25'], ['Flask', '1.1.2', '2.2.5'], ['requests', '2.25.1', '2.32.0'], ['urllib3', '1.26.5', '1.26.19'], ['cryptography', '3.4.7', '42.0.4'], ['PyYAML', '5.3.1', '5.4'],
      ['Jinja2', '2.11.3', '3.1.4'], ['Werkzeug', '1.0.1', '3.0.3'], ['Pillow', '8.2.0', '10.3.0'], ['setuptools', '57.0.0', '70.0.0'], ['certifi', '2021.5.30', '2024.7.4'], ['idna', '2.10', '3.7'],
      ['aiohttp', '3.7.4', '3.9.4'], ['sqlparse', '0.4.1', '0.5.0'], ['lxml', '4.6.3', '4.9.1'],
    ],
    path: (name, version) => `usr/local/lib/python3.11/site-packages/${name}-${version}.dist-info/METADATA`,
  },
  {
    type: 'node-pkg', target: () => 'Node.js', source: { ID: 'ghsa', Name: 'GitHub Security Advisory npm', URL: 'https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm' },
    packages: [
      ['lodash', '4.17.15', '4.17.21'], ['express', '4.17.1', '4.19.2'], ['minimist', '1.2.5', '1.2.6'], ['axios', '0.21.1', '1.6.0'], ['semver', '7.3.5', '7.5.2'], ['ws', '7.4.5', '7.5.10'],
      ['tar', '6.1.0', '6.2.1'], ['json5', '2.2.0', '2.2.2'], ['jsonwebtoken', '8.5.1', '9.0.0'], ['follow-redirects', '1.14.1', '1.15.6'], ['body-parser', '1.19.0', '1.20.3'], ['path-to-regexp', '0.1.7', '0.1.10'],
      ['@babel/traverse', '7.14.5', '7.23.2'], ['node-fetch', '2.6.1', '2.6.7'], ['qs', '6.7.0', '6.10.3'],
    ],
    path: (name, version) => `app/node_modules/${name}/package.json#${version}`,
  },
  {
    type: 'gobinary', target: () => 'usr/local/bin/server', source: { ID: 'govulndb', Name: 'The Go Vulnerability Database', URL: 'https://pkg.go.dev/vuln/' },
    packages: [
      ['stdlib', 'v1.21.5', '1.21.11'], ['golang.org/x/net', 'v0.17.0', '0.23.0'], ['golang.org/x/crypto', 'v0.14.0', '0.31.0'], ['google.golang.org/grpc', 'v1.58.2', '1.58.3'],
      ['google.golang.org/protobuf', 'v1.31.0', '1.33.0'], ['github.com/golang-jwt/jwt/v4', 'v4.5.0', '4.5.1'], ['github.com/docker/docker', 'v24.0.7+incompatible', '25.0.6+incompatible'],
      ['github.com/opencontainers/runc', 'v1.1.9', '1.1.12'], ['golang.org/x/text', 'v0.3.7', '0.3.8'],
    ],
  },
];

const TITLE_PHRASES = [
  'heap-based buffer overflow in the parser', 'use-after-free when handling crafted input', 'denial of service via excessive resource consumption', 'out-of-bounds read in decoder',
  'integer overflow leads to memory corruption', 'improper certificate validation', 'path traversal via crafted archive', 'NULL pointer dereference', 'infinite loop on malformed data',
  'remote code execution via deserialization of untrusted data', 'information disclosure through timing side channel', 'HTTP request smuggling', 'regular expression denial of service (ReDoS)',
  'improper input validation allows "header injection"', 'double free in error path', 'stack exhaustion via deeply nested structures', 'privilege escalation through race condition',
];
const SENTENCES = [
  'A flaw was found in the way the library processed specially crafted input.',
  'An attacker able to supply a malicious file could cause the application to crash or, possibly, execute arbitrary code with the privileges of the user running the application.',
  'This issue affects versions before the fixed release listed in the advisory.',
  'The vulnerability exists due to insufficient validation of user-supplied input when parsing length fields.',
  'Successful exploitation requires the victim to open a crafted document.',
  'A remote, unauthenticated attacker can trigger the issue by sending a crafted request to the affected service.',
  'NOTE: the vendor disputes the severity of this issue because exploitation requires a non-default configuration.',
  'The highest threat from this vulnerability is to data confidentiality and integrity as well as system availability.',
  'In the "strict" mode the check is performed after the buffer has already been filled,\nwhich leads to an out-of-bounds write of up to 16 bytes.',
  'Users are advised to upgrade; there are no known workarounds.',
];
const VECTORS: Array<[string, number]> = [
  ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8], ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10], ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', 7.5],
  ['CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', 7.8], ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', 8.8], ['CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N', 5.9],
  ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1], ['CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H', 5.5], ['CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H', 5.9],
  ['CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N', 4.7], ['CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N', 3.1], ['CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N', 3.3],
];
const SEVERITY_OF = (score: number) => (score >= 9 ? 'CRITICAL' : score >= 7 ? 'HIGH' : score >= 4 ? 'MEDIUM' : 'LOW');
const VENDOR_SEVERITY: Record<string, number> = { LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4 };
const CWES = ['CWE-787', 'CWE-79', 'CWE-20', 'CWE-125', 'CWE-416', 'CWE-22', 'CWE-190', 'CWE-476', 'CWE-400', 'CWE-502', 'CWE-835', 'CWE-295'];
const REF_HOSTS = [
  'https://access.redhat.com/security/cve/', 'https://nvd.nist.gov/vuln/detail/', 'https://security-tracker.debian.org/tracker/', 'https://ubuntu.com/security/',
  'https://www.cve.org/CVERecord?id=', 'https://security.netapp.com/advisory/ntap-20240201-0003/?', 'https://lists.debian.org/debian-lts-announce/2024/01/msg00012.html?',
  'https://bugzilla.redhat.com/show_bug.cgi?id=', 'https://github.com/advisories/', 'https://www.openwall.com/lists/oss-security/2024/02/13/',
];
const TRIVY_STATUS: Record<string, string> = {
  affected: 'affected', fixed: 'fix_available', will_not_fix: 'will_not_fix', fix_deferred: 'will_not_fix',
};
const TEAMS = ['payments', 'checkout', 'identity', 'search', 'catalog', 'shipping', 'billing', 'platform', 'data', 'ml', 'mobile-api', 'notifications'];
const SERVICES = ['api', 'worker', 'gateway', 'scheduler', 'web', 'ingest', 'export', 'auth', 'cache-warmer', 'indexer', 'reporting', 'admin'];

// COPY text format, for the baseline's input file.
const copyField = (v: string | number | undefined): string =>
  v === undefined ? '\\N' : String(v).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');

async function write(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

interface Generated {
  files: string[];
  /** The image each report scans (its ArtifactName), in the order of files. */
  targets: string[];
  /** COPY input for the baseline, one file per stream. */
  copyFiles: string[];
  reportBytes: number;
  rows: number;
}

/** One Trivy image report (SchemaVersion 2, as `trivy image --format json` writes it) per asset. */
async function generate(dir: string, options: Options, cves: string[]): Promise<Generated> {
  const random = prng(20260130);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const hex = (bytes: number): string => {
    let out = '';
    while (out.length < bytes * 2) out += Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
    return out.slice(0, bytes * 2);
  };
  // Images differ in size (slim vs full base images); the total is exact.
  const weights = Array.from({ length: options.assets }, () => 0.25 + random() * 1.5);
  const total = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor((w / total) * options.findings));
  for (let i = 0, left = options.findings - sizes.reduce((a, b) => a + b, 0); left > 0; i = (i + 1) % sizes.length, left--) sizes[i]!++;

  const copyOuts = Array.from({ length: options.concurrency }, (_, i) => createWriteStream(join(dir, `baseline-${i}.tsv`)));
  const files: string[] = [];
  const targets: string[] = [];
  let reportBytes = 0;
  let rows = 0;
  for (let a = 0; a < options.assets; a++) {
    const distro = pick(DISTROS);
    const image = `registry.example.com/${TEAMS[a % TEAMS.length]}/${SERVICES[Math.floor(a / TEAMS.length) % SERVICES.length]}-${a}:${1 + (a % 5)}.${a % 17}.${a % 3}`;
    const repo = image.slice(0, image.lastIndexOf(':'));
    const layers = Array.from({ length: 4 + Math.floor(random() * 6) }, () => ({ Digest: `sha256:${hex(32)}`, DiffID: `sha256:${hex(32)}` }));
    const langs = LANGS.filter(() => random() < 0.45);
    const count = sizes[a]!;
    const langShare = langs.length ? 0.15 + random() * 0.3 : 0;
    const results: Array<{ Target: string; Class: string; Type: string; Vulnerabilities: unknown[] }> = [
      { Target: `${image} (${distro.family} ${distro.name})`, Class: 'os-pkgs', Type: distro.type, Vulnerabilities: [] },
      ...langs.map((l) => ({ Target: l.target(image), Class: 'lang-pkgs', Type: l.type, Vulnerabilities: [] as unknown[] })),
    ];
    const identities = new Set<string>();
    const assetKey = `image:${image}`;
    const copyOut = copyOuts[a % copyOuts.length]!;
    let copyText = '';
    for (let n = 0; n < count; ) {
      const r = langs.length && random() < langShare ? 1 + Math.floor(random() * langs.length) : 0;
      const result = results[r]!;
      const lang = r > 0 ? langs[r - 1]! : undefined;
      const [pkg, installed, fixed] = pick(lang ? lang.packages : distro.packages);
      // A package usually carries several CVEs; identities repeat only by accident and are redrawn.
      const burst = Math.min(count - n, 1 + Math.floor(random() * random() * 12));
      for (let b = 0; b < burst; b++) {
        const cve = pick(cves);
        const location = lang?.path ? lang.path(pkg, installed) : '';
        const identity = `${cve}\x1f${pkg}\x1f${installed}\x1f${location}`;
        if (identities.has(identity)) continue;
        identities.add(identity);
        n++;
        const [vector, score] = random() < 0.04 ? [undefined, undefined] : pick(VECTORS);
        const severity = score === undefined ? 'UNKNOWN' : SEVERITY_OF(score);
        const status = fixed && random() < 0.85 ? 'fixed' : lang ? 'affected' : pick(['affected', 'affected', 'will_not_fix', 'fix_deferred']);
        const year = cve.slice(4, 8);
        const title = `${pkg}: ${pick(TITLE_PHRASES)}`;
        const description = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(SENTENCES)).join(' ');
        const references = Array.from({ length: 2 + Math.floor(random() * 10) }, (_, i) => `${REF_HOSTS[(i + a) % REF_HOSTS.length]}${cve}`);
        const layer = pick(layers);
        const purl = lang ? undefined : `pkg:${distro.purlType}/${distro.family}/${pkg}@${encodeURIComponent(installed)}?arch=amd64&distro=${distro.family}-${distro.name}`;
        result.Vulnerabilities.push({
          VulnerabilityID: cve,
          PkgID: `${pkg}@${installed}`,
          PkgName: pkg,
          ...(location ? { PkgPath: location } : {}),
          PkgIdentifier: { ...(purl ? { PURL: purl } : {}), UID: hex(8) },
          InstalledVersion: installed,
          ...(status === 'fixed' ? { FixedVersion: fixed } : {}),
          Status: status,
          Layer: layer,
          SeveritySource: lang ? 'ghsa' : distro.family === 'alpine' ? 'nvd' : distro.family,
          PrimaryURL: `https://avd.aquasec.com/nvd/${cve.toLowerCase()}`,
          DataSource: lang ? lang.source : distro.source,
          Title: title,
          Description: description,
          Severity: severity,
          CweIDs: [pick(CWES)],
          VendorSeverity: score === undefined ? {} : { nvd: VENDOR_SEVERITY[severity], [lang ? 'ghsa' : distro.family]: VENDOR_SEVERITY[severity] },
          ...(vector ? { CVSS: { nvd: { V3Vector: vector, V3Score: score }, redhat: { V3Vector: vector, V3Score: score } } } : {}),
          References: references,
          PublishedDate: `${year}-0${1 + Math.floor(random() * 9)}-1${Math.floor(random() * 9)}T15:15:0${Math.floor(random() * 9)}.${Math.floor(random() * 900 + 100)}Z`,
          LastModifiedDate: `2025-0${1 + Math.floor(random() * 9)}-2${Math.floor(random() * 9)}T01:49:03.037Z`,
        });
        // The staging columns as the connector normalizes them, keyed by a fingerprint-like hash.
        const component = componentName(trivyEcosystem(result.Type), pkg);
        const fields = [assetKey, 'vulnerability', cve, component, installed, location];
        const fingerprint = createHash('sha256').update(fields.join('\x1f')).digest('hex');
        copyText += [fingerprint, ...fields, status === 'fixed' ? fixed : undefined, severity.toLowerCase(), score, vector, title, TRIVY_STATUS[status]].map(copyField).join('\t') + '\n';
      }
    }
    const report = {
      SchemaVersion: 2,
      CreatedAt: '2026-01-30T10:00:00.000000000Z',
      ArtifactName: image,
      ArtifactType: 'container_image',
      Metadata: {
        OS: { Family: distro.family, Name: distro.name },
        ImageID: `sha256:${hex(32)}`,
        DiffIDs: layers.map((l) => l.DiffID),
        RepoTags: [image],
        RepoDigests: [`${repo}@sha256:${hex(32)}`],
        ImageConfig: {
          architecture: 'amd64', os: 'linux', created: '2026-01-29T08:12:44Z',
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.DiffID) },
          config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'], Cmd: ['/usr/local/bin/server'], User: '10001' },
        },
      },
      Results: results.filter((r) => r.Vulnerabilities.length > 0),
    };
    const file = join(dir, 'reports', `image-${String(a).padStart(5, '0')}.json`);
    const text = JSON.stringify(report, null, 2);
    writeFileSync(file, text);
    reportBytes += Buffer.byteLength(text);
    files.push(file);
    targets.push(image);
    rows += count;
    await write(copyOut, copyText);
  }
  await Promise.all(copyOuts.map(async (out) => {
    out.end();
    await once(out, 'finish');
  }));
  return { files, targets, copyFiles: copyOuts.map((o) => o.path as string), reportBytes, rows };
}

/**
 * Generation runs in a child process: megabytes of report text per image would otherwise stay in
 * this process's heap, and its garbage collection and peak RSS are part of what is measured.
 */
async function generateElsewhere(dir: string, options: Options): Promise<Generated & { cves: string }> {
  const args = ['--findings', String(options.findings), '--assets', String(options.assets), '--concurrency', String(options.concurrency), '--generate-into', dir];
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`report generation failed (exit ${code})`);
  return JSON.parse(out) as Generated & { cves: string };
}

async function generateOnly(dir: string, options: Options): Promise<number> {
  const cves = loadCves();
  mkdirSync(join(dir, 'reports'));
  const generated = await generate(dir, options, cves.ids);
  process.stdout.write(JSON.stringify({ ...generated, cves: cves.from }));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Database


// ---------------------------------------------------------------------------------------------
// Timed sections

interface Totals extends IngestCounts {
  reports: number;
}

async function ingestAll(sql: postgres.Sql, files: string[], concurrency: number): Promise<{ seconds: number; totals: Totals }> {
  const totals: Totals = { findings: 0, newFindings: 0, reopenedFindings: 0, closedFindings: 0, assets: 0, reports: 0 };
  let next = 0;
  // Each report is its own scan and transaction, as the ingestReport activity runs it.
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      const connector = await connectorFor(file, basename(file));
      const counts = await ingestFindings(sql, { id: randomUUID(), source: 'trivy' }, connector.parse(file, {}));
      totals.findings += counts.findings;
      totals.newFindings += counts.newFindings;
      totals.reopenedFindings += counts.reopenedFindings;
      totals.closedFindings += counts.closedFindings;
      totals.assets += counts.assets;
      totals.reports++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return { seconds: (performance.now() - started) / 1000, totals };
}

/** Parse only (no database): what the connector alone costs. */
async function parseAll(files: string[], concurrency: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      for await (const _ of (await connectorFor(file, basename(file))).parse(file, {})) void _;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return (performance.now() - started) / 1000;
}

const BASELINE_TABLE = 'bench_copy_baseline';

/** The yardstick: the same rows, pre-rendered as COPY text, streamed into a plain table keyed by a sha256 hex column. */
async function copyBaseline(sql: postgres.Sql, copyFiles: string[]): Promise<number> {
  await sql.unsafe(`drop table if exists ${BASELINE_TABLE}`);
  await sql.unsafe(`
    create table ${BASELINE_TABLE} (
      fingerprint text primary key, asset_key text not null, kind text not null, issue_id text not null, component text not null,
      version text not null, location text not null, fixed_version text, severity text not null, cvss_score real, cvss_vector text, title text,
      vendor_status text
    )`);
  const started = performance.now();
  await Promise.all(copyFiles.map(async (file) => {
    const target = await sql.unsafe(`copy ${BASELINE_TABLE} from stdin`).writable();
    await pipeline(createReadStream(file, { highWaterMark: 256 * 1024 }), target);
  }));
  return (performance.now() - started) / 1000;
}

/** Everything about the findings but when they were last seen: a re-ingest must leave it as it was. */
async function findingsDigest(sql: postgres.Sql): Promise<string> {
  const [row] = await sql`
    select count(*)::bigint as n, count(*) filter (where status = 'open')::bigint as open,
           coalesce(sum(hashtextextended(concat_ws('|', id, fingerprint, asset_id, status, severity, cvss_score, cvss_vector, fixed_version, title, vendor_status,
                                                   reopen_count, closed_at, first_seen_at, first_scan_id), 0)::numeric), 0)::text as h,
           (select count(*) from finding_sources where present)::bigint as sources
    from findings`;
  return `${row!.n}/${row!.open}/${row!.sources}/${row!.h}`;
}

async function walBytes(sql: postgres.Sql): Promise<bigint | undefined> {
  try {
    const [row] = await sql`select pg_current_wal_lsn() - '0/0'::pg_lsn as lsn`;
    return BigInt(String(row!.lsn).split('.')[0]!);
  } catch {
    return undefined;
  }
}

const walMb = (before?: bigint, after?: bigint): number | null =>
  before === undefined || after === undefined ? null : Math.round(Number(after - before) / 1024 / 1024);

interface ProcStat {
  ppid: number;
  /** utime + stime, and the same for children already reaped. */
  self: number;
  reaped: number;
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/** What a server process does, from its title (`postgres: autovacuum worker ...`). */
function processKind(pid: number): string {
  try {
    const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    if (/autovacuum/.test(title)) return 'autovacuum';
    if (/checkpointer|background writer|walwriter|wal writer/.test(title)) return 'writers';
    return /postgres: \S+ \S+ /.test(title) ? 'backends' : 'other';
  } catch {
    return 'other';
  }
}

/**
 * CPU seconds of the embedded server, all of it: the postmaster's live children by kind, plus what
 * children that already exited used (mostly autovacuum workers), from /proc. Linux, local server only.
 */
async function serverCpu(sql: postgres.Sql, local: boolean): Promise<Record<string, number> | undefined> {
  if (!local || process.platform !== 'linux') return undefined;
  const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  const postmaster = procStat(row!.pid)?.ppid;
  const master = postmaster ? procStat(postmaster) : undefined;
  if (!postmaster || !master) return undefined;
  const out: Record<string, number> = { exited: master.reaped / 100 };
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = procStat(pid);
    if (stat?.ppid !== postmaster) continue;
    const kind = processKind(pid);
    out[kind] = (out[kind] ?? 0) + stat.self / 100;
  }
  return out;
}

interface CpuSample {
  node: number;
  server: Record<string, number> | undefined;
}

async function cpuNow(sql: postgres.Sql, local: boolean): Promise<CpuSample> {
  const { user, system } = process.cpuUsage();
  return { node: (user + system) / 1e6, server: await serverCpu(sql, local) };
}

/** Node and server CPU seconds between two samples; a process that started in between counts from zero. */
function cpuSpent(a: CpuSample, b: CpuSample) {
  if (!a.server || !b.server) return { node: round(b.node - a.node, 1), server: null };
  const kinds = [...new Set([...Object.keys(a.server), ...Object.keys(b.server)])];
  // A live process can exit between samples and move to `exited`; only the total is exact then.
  const byKind = Object.fromEntries(kinds.map((k) => [k, round((b.server![k] ?? 0) - (a.server![k] ?? 0), 1)]));
  const total = kinds.reduce((sum, k) => sum + (b.server![k] ?? 0) - (a.server![k] ?? 0), 0);
  return { node: round(b.node - a.node, 1), server: round(total, 1), serverByKind: byKind };
}

/** Untimed: a checkpoint between sections, so no section pays for the previous one's dirty pages. */
async function settle(sql: postgres.Sql): Promise<void> {
  try {
    await sql`checkpoint`;
  } catch {
    // Not allowed for this role on a shared server: the sections just get noisier.
  }
}

// ---------------------------------------------------------------------------------------------
// --cluster: the same reports uploaded through the APIs of the production shape, then the same
// reports ingested in-process into a fresh database, and the two estates compared.

let activeCluster: Cluster | undefined;

/** What an ingest left in a database, free of ids and times: two runs of the same reports must agree. */
async function estate(sql: postgres.Sql) {
  const [row] = await sql`
    select (select count(*) from findings)::int as findings,
           (select count(*) from findings where status = 'open')::int as "openFindings",
           (select count(*) from finding_sources where present)::int as "findingSources",
           (select count(*) from assets)::int as assets,
           (select coalesce(sum(hashtextextended(concat_ws('|', a.kind, a.name, f.kind, f.issue_id, f.component, f.version, f.location, f.status, f.severity,
                                                           f.cvss_score, f.cvss_vector, f.fixed_version, f.title, f.vendor_status, f.reopen_count), 0)::numeric), 0)::text
              from findings f join assets a on a.id = f.asset_id) as "findingsDigest",
           (select coalesce(sum(hashtextextended(concat_ws('|', a.name, f.issue_id, f.component, f.version, f.location, s.source, s.present, s.vendor_status,
                                                           s.severity, s.cvss_score, s.cvss_vector), 0)::numeric), 0)::text
              from finding_sources s join findings f on f.id = s.finding_id join assets a on a.id = f.asset_id) as "sourcesDigest"`;
  return row as { findings: number; openFindings: number; findingSources: number; assets: number; findingsDigest: string; sourcesDigest: string };
}

/** The worker process that ran each scan's ingestReport activity (its identity is `<pid>@<host>`), from the workflow histories. */
async function ingestsPerWorker(client: Client, workflowIds: string[], workers: Cluster['workers']): Promise<Record<string, number>> {
  const byPid = new Map(workers.map((w) => [String(w.pid()), w.name]));
  const out: Record<string, number> = {};
  let next = 0;
  const reader = async () => {
    while (next < workflowIds.length) {
      const history = await client.workflow.getHandle(workflowIds[next++]!).fetchHistory();
      const scheduled = new Set<string>();
      let identity: string | undefined;
      for (const event of history.events ?? []) {
        if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'ingestReport') scheduled.add(String(event.eventId));
        const started = event.activityTaskStartedEventAttributes;
        if (started && scheduled.has(String(started.scheduledEventId))) identity = started.identity ?? undefined;
      }
      const name = identity ? byPid.get(identity.split('@')[0]!) ?? `other (${identity})` : 'unknown';
      out[name] = (out[name] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 8 }, reader));
  return out;
}

async function clusterBench(
  dir: string,
  options: Options,
  generated: Generated,
  { cves, generateSeconds, log }: { cves: string; generateSeconds: number; log: (line: string) => void },
): Promise<number> {
  const { files, targets } = generated;
  const dataDir = join(dir, 'cluster');
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o755); // the embedded server runs as the postgres user
  const env: Record<string, string> = {
    CTEM_DATA_DIR: dataDir,
    CTEM_PG_PORT: String(await freePort()),
    TEMPORAL_UI_PORT: String(await freePort()),
    SERVICENOW_SIM_PORT: String(await freePort()),
    // Nothing but the scans runs: no schedules of other phases compete with them.
    CTEM_VALIDATION_SCHEDULE: 'off',
    CTEM_VALIDATION_AFTER_RESCORE: 'false',
    CTEM_METRICS_SCHEDULE: 'off',
    CTEM_HUNTING_SCHEDULE: 'off',
  };
  log(`starting the cluster (${options.apis} API, ${options.workers} worker processes) ...`);
  const clusterStarted = performance.now();
  const cluster = await startCluster({
    config: loadConfig(env),
    workers: options.workers,
    apis: options.apis,
    apiPorts: await Promise.all(Array.from({ length: options.apis }, () => freePort())),
    temporalPorts: await freeTemporalPorts(),
    childEnv: env,
    log: (line) => log(`  [cluster] ${line}`),
  });
  activeCluster = cluster;
  const clusterStartSeconds = (performance.now() - clusterStarted) / 1000;
  const sql = postgres(cluster.databaseUrl, { max: 2, onnotice: () => {} });
  let connection: Connection | undefined;
  let inProcess: BenchDatabase | undefined;
  let inProcessClient: ReturnType<typeof connectDatabase> | undefined;
  try {
    log(`uploading ${files.length} reports through ${options.apis} API(s), ${options.uploads} at a time ...`);
    const perApi = cluster.apiUrls.map(() => 0);
    const workflowIds: string[] = [];
    let auditUnrecorded = 0;
    let next = 0;
    const uploader = async () => {
      while (next < files.length) {
        const i = next++;
        const api = i % cluster.apiUrls.length;
        const query = new URLSearchParams({ filename: basename(files[i]!), target: targets[i]!, source: 'trivy' });
        const res = await fetch(`${cluster.apiUrls[api]}/api/v1/scans?${query}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${cluster.apiToken}` },
          body: await readFile(files[i]!),
        });
        const body = await res.text();
        perApi[api]!++;
        // The scan was accepted but its audit entry not written: repeating the upload would make a second scan.
        if (res.status === 503 && body.includes('"audit_unavailable"')) {
          auditUnrecorded++;
          continue;
        }
        if (res.status !== 202) throw new Error(`upload of ${basename(files[i]!)} through api-${api + 1}: HTTP ${res.status} ${body}`);
        workflowIds[i] = (JSON.parse(body) as { workflowId: string }).workflowId;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: Math.min(options.uploads, files.length) }, uploader));
    const uploadSeconds = (performance.now() - started) / 1000;
    log(`  uploaded in ${uploadSeconds.toFixed(1)} s; waiting for every scan to complete ...`);

    // Done when no scan of the run is running; a minute without any scan finishing is a stall.
    let states = { running: files.length, completed: 0, failed: 0 };
    let lastProgress = performance.now();
    for (;;) {
      const [row] = await sql<Array<typeof states>>`
        select count(*) filter (where status = 'running')::int as running, count(*) filter (where status = 'completed')::int as completed,
               count(*) filter (where status = 'failed')::int as failed
        from scans`;
      if (row!.completed + row!.failed > states.completed + states.failed) lastProgress = performance.now();
      states = row!;
      if (states.running === 0 && states.completed + states.failed >= files.length) break;
      if (performance.now() - lastProgress > 300_000) {
        throw new Error(`no scan finished for five minutes (${states.completed} completed, ${states.failed} failed, ${states.running} running of ${files.length})`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    log(`  ${states.completed} completed, ${states.failed} failed, in ${seconds.toFixed(1)} s`);
    const failures = await sql<{ target: string; error: string }[]>`select target, coalesce(error, '') as error from scans where status = 'failed' order by created_at limit 5`;
    const [reported] = await sql<{ findings: number }[]>`select coalesce(sum((counts->>'findings')::bigint), 0)::int as findings from scans where status = 'completed'`;
    const clusterEstate = await estate(sql);

    log('ingest activities per worker (from the workflow histories) ...');
    connection = await Connection.connect({ address: cluster.temporalAddress });
    const perWorker = await ingestsPerWorker(new Client({ connection, namespace: cluster.namespace }), workflowIds.filter(Boolean), cluster.workers);

    // The cluster's server has no connections to spare (Temporal, workers, APIs): the in-process run
    // gets a database of its own, with the cluster stopped so that it has the machine to itself.
    await connection.close();
    connection = undefined;
    await sql.end();
    activeCluster = undefined;
    await cluster.stop();
    log('the same reports in-process, into a fresh database ...');
    inProcess = await openBenchDatabase(dir, { prefix: 'bench_inprocess', keep: false });
    await migrateDatabase(inProcess.url);
    inProcessClient = connectDatabase(inProcess.url, { max: options.concurrency + 1 });
    const single = await ingestAll(inProcessClient.sql, files, options.concurrency);
    const singleEstate = await estate(inProcessClient.sql);

    const differences = (Object.keys(singleEstate) as Array<keyof typeof singleEstate>)
      .filter((k) => singleEstate[k] !== clusterEstate[k])
      .map((k) => `${k}: cluster ${clusterEstate[k]}, in-process ${singleEstate[k]}`);
    if (reported!.findings !== single.totals.findings) differences.push(`findings the scans counted: cluster ${reported!.findings}, in-process ${single.totals.findings}`);
    const findings = clusterEstate.findings;
    const result = {
      mode: 'cluster',
      findings,
      reports: files.length,
      seconds: round(seconds, 3),
      findingsPerSecond: Math.round(findings / seconds),
      uploadSeconds: round(uploadSeconds, 3),
      scans: states,
      failures,
      auditUnrecorded,
      uploadsPerApi: Object.fromEntries(cluster.apis.map((a, i) => [a.name, perApi[i]!])),
      ingestsPerWorker: perWorker,
      counts: { cluster: clusterEstate, inProcess: singleEstate, identical: differences.length === 0, differences },
      inProcessSeconds: round(single.seconds, 3),
      inProcessFindingsPerSecond: Math.round(single.totals.findings / single.seconds),
      reportMb: Math.round(generated.reportBytes / 1024 / 1024),
      generateSeconds: round(generateSeconds),
      clusterStartSeconds: round(clusterStartSeconds, 1),
      apis: options.apis,
      workers: options.workers,
      uploadConcurrency: options.uploads,
      maxSeconds: options.maxSeconds ?? null,
      withinMaxSeconds: options.maxSeconds === undefined ? null : seconds <= options.maxSeconds,
      timed: 'from the first upload to the moment every scan is completed or failed: upload (POST /api/v1/scans), then each scan\'s discovery workflow (ingest, score, mobilize) on the workers',
      inProcessMode: `the same reports through the trivy-json connector and ingestFindings, ${options.concurrency} at a time, into a fresh database (after the cluster run, with the cluster stopped)`,
      cves,
      cpus: availableParallelism(),
    };
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else printClusterTable(result);
    return differences.length === 0 && states.failed === 0 && result.withinMaxSeconds !== false ? 0 : 1;
  } finally {
    await inProcessClient?.close();
    await inProcess?.stop();
    await connection?.close();
    await sql.end();
    if (activeCluster) {
      activeCluster = undefined;
      await cluster.stop();
    }
  }
}

function printClusterTable(r: Record<string, unknown> & { counts: { cluster: Record<string, unknown>; inProcess: Record<string, unknown>; identical: boolean; differences: string[] } }): void {
  const n = (v: unknown) => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
  const rows: Array<[string, string]> = [
    ['findings', n(r.findings)],
    ['reports (images)', `${n(r.reports)} (${n(r.reportMb)} MB of Trivy JSON)`],
    ['cluster', `${n(r.apis)} API, ${n(r.workers)} worker processes (started in ${n(r.clusterStartSeconds)} s, untimed)`],
    ['upload + ingest', `${n(r.seconds)} s  (${n(r.findingsPerSecond)} findings/s)`],
    ['uploads alone', `${n(r.uploadSeconds)} s (${n(r.uploadConcurrency)} at a time)`],
    ['scans', JSON.stringify(r.scans)],
    ['uploads per API', JSON.stringify(r.uploadsPerApi)],
    ['accepted, audit not recorded (503)', n(r.auditUnrecorded)],
    ['ingests per worker', JSON.stringify(r.ingestsPerWorker)],
    ['in-process ingest', `${n(r.inProcessSeconds)} s  (${n(r.inProcessFindingsPerSecond)} findings/s)`],
    ['counts (cluster)', JSON.stringify(r.counts.cluster)],
    ['counts (in-process)', JSON.stringify(r.counts.inProcess)],
    ['counts identical', r.counts.identical ? 'yes' : `NO: ${r.counts.differences.join('; ')}`],
    ...(r.maxSeconds !== null ? [[`within ${n(r.maxSeconds)} s`, r.withinMaxSeconds ? 'yes' : 'NO'] as [string, string]] : []),
    ['timed', String(r.timed)],
    ['in-process', String(r.inProcessMode)],
    ['CVE ids', String(r.cves)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
  for (const f of (r.failures as Array<{ target: string; error: string }>)) process.stdout.write(`failed: ${f.target}: ${f.error}\n`);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (options.generateInto) return generateOnly(options.generateInto, options);
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 100);
  const dir = mkdtempSync(join(tmpdir(), 'ctem-bench-'));
  chmodSync(dir, 0o755); // the embedded server runs as the postgres user
  const log = (line: string) => {
    if (!options.json) process.stderr.write(`${line}\n`);
  };
  let database: BenchDatabase | undefined;
  let client: ReturnType<typeof connectDatabase> | undefined;
  // Whatever happens to the output or the run, the server and the temp dir must not outlive it.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const abort = async () => {
    await activeCluster?.stop().catch(() => {});
    await client?.close().catch(() => {});
    await database?.stop().catch(() => {});
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    log(`generating ${options.findings} findings over ${options.assets} images ...`);
    const genStarted = performance.now();
    const { cves, ...generated } = await generateElsewhere(dir, options);
    const generateSeconds = (performance.now() - genStarted) / 1000;
    log(`  ${generated.files.length} reports, ${(generated.reportBytes / 1024 / 1024).toFixed(0)} MB, in ${generateSeconds.toFixed(1)} s (CVE ids: ${cves})`);
    if (options.cluster) return await clusterBench(dir, options, generated, { cves, generateSeconds, log });

    database = await openBenchDatabase(dir, { prefix: 'bench', keep: options.keep });
    await migrateDatabase(database.url);
    client = connectDatabase(database.url, { max: options.concurrency + 1 });
    const { sql } = client;

    let parseSeconds: number | undefined;
    if (options.profile) {
      log('parse only ...');
      parseSeconds = await parseAll(generated.files, options.concurrency);
    }

    const local = !process.env.DATABASE_URL;
    log('ingest ...');
    await settle(sql);
    let wal = await walBytes(sql);
    let cpu = await cpuNow(sql, local);
    const first = await ingestAll(sql, generated.files, options.concurrency);
    let cpuAfter = await cpuNow(sql, local);
    const ingestCpu = cpuSpent(cpu, cpuAfter);
    let walAfter = await walBytes(sql);
    const ingestWalMb = walMb(wal, walAfter);
    const before = await findingsDigest(sql);

    log('re-ingest ...');
    await settle(sql);
    wal = await walBytes(sql);
    cpu = await cpuNow(sql, local);
    const second = await ingestAll(sql, generated.files, options.concurrency);
    cpuAfter = await cpuNow(sql, local);
    const reingestCpu = cpuSpent(cpu, cpuAfter);
    walAfter = await walBytes(sql);
    const reingestWalMb = walMb(wal, walAfter);
    const after = await findingsDigest(sql);

    log('raw COPY baseline ...');
    await settle(sql);
    wal = await walBytes(sql);
    cpu = await cpuNow(sql, local);
    const copySeconds = await copyBaseline(sql, generated.copyFiles);
    cpuAfter = await cpuNow(sql, local);
    const copyCpu = cpuSpent(cpu, cpuAfter);
    walAfter = await walBytes(sql);
    const copyWalMb = walMb(wal, walAfter);
    const [copied] = await sql.unsafe(`select count(*)::int as n from ${BASELINE_TABLE}`);

    const findings = first.totals.findings;
    const findingsPerSecond = findings / first.seconds;
    const copyRowsPerSecond = Number(copied!.n) / copySeconds;
    const ratio = findingsPerSecond / copyRowsPerSecond;
    const peakRssMb = Math.round(peakRss / 1024 / 1024);
    const reingestUnchanged = before === after && second.totals.newFindings === 0 && second.totals.reopenedFindings === 0
      && second.totals.closedFindings === 0 && second.totals.findings === findings;
    const target = {
      millionFindings: findings >= 1_000_000,
      ingestWithin60s: first.seconds <= 60,
      ratioAtLeastHalf: ratio >= 0.5,
      peakRssUnder1GB: peakRssMb < 1024,
      reingestWithin60s: second.seconds <= 60,
      reingestChangedNothing: reingestUnchanged,
      met: false,
    };
    target.met = Object.entries(target).every(([k, v]) => k === 'met' || v);
    // Timings to the millisecond: the rates are derived from them, and a small run takes well under a second.
    const result = {
      findings,
      seconds: round(first.seconds, 3),
      findingsPerSecond: Math.round(findingsPerSecond),
      copyRowsPerSecond: Math.round(copyRowsPerSecond),
      ratio: round(ratio, 3),
      peakRssMb,
      reingestSeconds: round(second.seconds, 3),
      reingestFindingsPerSecond: Math.round(findings / second.seconds),
      copySeconds: round(copySeconds, 3),
      ...(parseSeconds !== undefined ? { parseSeconds: round(parseSeconds) } : {}),
      reingest: { ...second.totals, unchanged: reingestUnchanged },
      walMb: { ingest: ingestWalMb, reingest: reingestWalMb, copy: copyWalMb },
      cpuSeconds: { ingest: ingestCpu, reingest: reingestCpu, copy: copyCpu },
      assets: first.totals.assets,
      reports: first.totals.reports,
      reportMb: Math.round(generated.reportBytes / 1024 / 1024),
      generateSeconds: round(generateSeconds),
      concurrency: options.concurrency,
      mode: `each report parsed by the trivy-json connector and merged by ingestFindings in its own transaction, ${options.concurrency} report(s) at a time`,
      baseline: `COPY FROM STDIN of the same ${copied!.n} rows (sha256 fingerprint + the 12 staging columns), pre-rendered as COPY text in ${generated.copyFiles.length} file(s) streamed concurrently, into an empty logged table with a text primary key on the fingerprint`,
      cves,
      database: database.where,
      cpus: availableParallelism(),
      target,
    };
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else printTable(result);
    if (options.keep) log(`kept ${dir}${process.env.DATABASE_URL ? ` and ${database.where}` : ''}`);
    return reingestUnchanged ? 0 : 1;
  } finally {
    clearInterval(sampler);
    await client?.close();
    await database?.stop();
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
  }
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

function printTable(r: Record<string, unknown> & { target: Record<string, boolean> }): void {
  const n = (v: unknown) => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
  const rows: Array<[string, string]> = [
    ['findings', n(r.findings)],
    ['reports (images)', `${n(r.reports)} (${n(r.reportMb)} MB of Trivy JSON)`],
    ['ingest', `${n(r.seconds)} s  (${n(r.findingsPerSecond)} findings/s)`],
    ['re-ingest', `${n(r.reingestSeconds)} s  (${n(r.reingestFindingsPerSecond)} findings/s)`],
    ['raw COPY baseline', `${n(r.copySeconds)} s  (${n(r.copyRowsPerSecond)} rows/s)`],
    ['ratio ingest / COPY', n(r.ratio)],
    ['peak RSS', `${n(r.peakRssMb)} MB`],
    ...(r.parseSeconds !== undefined ? [['parse only', `${n(r.parseSeconds)} s`] as [string, string]] : []),
    ['WAL written (MB)', JSON.stringify(r.walMb)],
    ['CPU seconds', JSON.stringify(r.cpuSeconds)],
    ['mode', String(r.mode)],
    ['baseline', String(r.baseline)],
    ['CVE ids', String(r.cves)],
    ['database', String(r.database)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
  process.stdout.write('\ntargets\n');
  const labels: Record<string, string> = {
    millionFindings: '1,000,000 findings', ingestWithin60s: 'ingest <= 60 s', ratioAtLeastHalf: 'ratio >= 0.5', peakRssUnder1GB: 'peak RSS < 1 GB',
    reingestWithin60s: 're-ingest <= 60 s', reingestChangedNothing: 're-ingest changed nothing', met: 'all met',
  };
  for (const [k, v] of Object.entries(r.target)) process.stdout.write(`  ${(labels[k] ?? k).padEnd(28)} ${v ? 'yes' : 'NO'}\n`);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench-ingest: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
