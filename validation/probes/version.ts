// Does a service still announce the vulnerable version? A finding names a component and version
// (`nginx` `1.18.0`); a probe saw banners (`Server: nginx/1.18.0`, `SSH-2.0-OpenSSH_7.4p1 Debian-10`,
// `X-Powered-By: PHP/5.3.12`). The table below says, per product, which names a finding may use
// and how its banners spell the version. A banner only shows what the service announces: a
// distribution that backports fixes keeps the old upstream version, so `same` means "the banner
// has not changed", never "still exploitable"; the banner is kept in the verdict for that reason.

export interface BannerProduct {
  /** The name used in verdicts. */
  product: string;
  /** Component names a finding may give (lower case; separators are normalized to spaces). */
  aliases: string[];
  /** Captures the version (group 1) from a banner. */
  version: RegExp;
  /** Recognises the product in a banner that shows no version. */
  mention: RegExp;
  /** OpenSSH's portable releases (`7.4p1`) are the release `7.4`. */
  portableSuffix?: boolean;
}

export const BANNER_PRODUCTS: readonly BannerProduct[] = [
  { product: 'nginx', aliases: ['nginx', 'nginx server', 'f5 nginx'], version: /\bnginx\/(\d[\w.]*)/i, mention: /\bnginx\b/i },
  { product: 'openresty', aliases: ['openresty'], version: /\bopenresty\/(\d[\w.]*)/i, mention: /\bopenresty\b/i },
  {
    product: 'apache httpd',
    aliases: ['apache httpd', 'httpd', 'apache', 'apache2', 'apache http server', 'http server', 'apache http_server', 'http_server'],
    // `Apache/2.4.49 (Unix)`; not `Apache-Coyote/1.1` (Tomcat's connector) nor `Apache Tomcat/9.0`.
    version: /\bApache\/(\d[\w.]*)/i,
    mention: /\bApache(?=\/|\s*$|\s+\()/i,
  },
  {
    product: 'apache tomcat',
    aliases: ['apache tomcat', 'tomcat', 'tomcat embed core', 'tomcat-embed-core', 'org.apache.tomcat.embed:tomcat-embed-core'],
    version: /\bApache Tomcat\/(\d[\w.\-]*)/i,
    mention: /\b(?:Apache-Coyote|Tomcat)\b/i,
  },
  { product: 'openssh', aliases: ['openssh', 'openssh server', 'openssh client', 'openbsd openssh', 'ssh', 'sshd'], version: /\bOpenSSH_(\d[\w.]*)/i, mention: /\bOpenSSH\b/i, portableSuffix: true },
  { product: 'dropbear', aliases: ['dropbear', 'dropbear ssh', 'dropbear_ssh'], version: /\bdropbear_(\d[\w.]*)/i, mention: /\bdropbear\b/i },
  { product: 'php', aliases: ['php', 'php fpm', 'php cgi', 'php cli', 'php5', 'php7', 'php8'], version: /\bPHP\/(\d[\w.]*)/i, mention: /\bPHP\b/i },
  {
    product: 'microsoft iis',
    aliases: ['microsoft iis', 'iis', 'internet information services', 'microsoft internet information services', 'internet_information_services'],
    version: /\bMicrosoft-IIS\/(\d[\w.]*)/i,
    mention: /\bMicrosoft-IIS\b/i,
  },
  { product: 'lighttpd', aliases: ['lighttpd'], version: /\blighttpd\/(\d[\w.]*)/i, mention: /\blighttpd\b/i },
  { product: 'openssl', aliases: ['openssl', 'libssl', 'libssl1.0.0', 'libssl1.1', 'libssl3'], version: /\bOpenSSL\/(\d[\w.]*)/i, mention: /\bOpenSSL\b/i },
  { product: 'jetty', aliases: ['jetty', 'eclipse jetty', 'jetty server', 'org.eclipse.jetty:jetty-server'], version: /\bJetty\((\d[\w.]*)\)/i, mention: /\bJetty\b/i },
  { product: 'gunicorn', aliases: ['gunicorn'], version: /\bgunicorn\/(\d[\w.]*)/i, mention: /\bgunicorn\b/i },
  { product: 'werkzeug', aliases: ['werkzeug'], version: /\bWerkzeug\/(\d[\w.]*)/i, mention: /\bWerkzeug\b/i },
  { product: 'python', aliases: ['python', 'cpython', 'python3'], version: /\bPython\/(\d[\w.]*)/i, mention: /\bPython\b/i },
  { product: 'vsftpd', aliases: ['vsftpd'], version: /\bvsFTPd (\d[\w.]*)/i, mention: /\bvsFTPd\b/i },
  { product: 'proftpd', aliases: ['proftpd'], version: /\bProFTPD (\d[\w.]*)/i, mention: /\bProFTPD\b/i },
  { product: 'exim', aliases: ['exim', 'exim4'], version: /\bExim (\d[\w.]*)/i, mention: /\bExim\b/i },
  { product: 'express', aliases: ['express', 'expressjs'], version: /\bExpress\/(\d[\w.]*)/i, mention: /\bExpress\b/i },
];

export interface VersionClaim {
  /** The finding's component, as the scanner named it (`nginx`, `openssh-server`, `apache httpd`). */
  component: string;
  /** The finding's installed version (`1.18.0`, `1:7.4p1-21`, `2.4.49`). */
  version: string;
}

export type VersionVerdict =
  | { result: 'same' | 'different'; product: string; seenVersion: string; banner: string }
  | { result: 'unknown'; reason: string; product?: string; seenVersion?: string; banner?: string };

/** The table's product for a finding's component, or a product read generically (`name/1.2.3`). */
export function productFor(component: string): BannerProduct {
  const name = normalizeName(component);
  const known = BANNER_PRODUCTS.find((p) => p.aliases.includes(name) || p.aliases.includes(name.replace(/^.*:/, '')));
  if (known) return known;
  // A product the table does not know: the common `Name/1.2.3` or `Name_1.2.3` or `Name 1.2.3` spelling.
  const words = name.split(' ').map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const spelled = words.join('[-_ ]?');
  return {
    product: name,
    aliases: [name],
    version: new RegExp(`\\b${spelled}[/_ ]v?(\\d[\\w.]*)`, 'i'),
    mention: new RegExp(`\\b${spelled}\\b`, 'i'),
  };
}

/**
 * Compares what a finding says is installed with what banners announce. `banners` are the raw
 * header values or service lines the probe read (a `Server` header, an `X-Powered-By` header, an
 * SSH identification line); the first that shows the product's version decides.
 */
export function compareBanner(claim: VersionClaim, banners: string | readonly (string | undefined)[]): VersionVerdict {
  if (!claim.component?.trim()) throw new TypeError('compareBanner: the finding names no component');
  if (!claim.version?.trim()) throw new TypeError(`compareBanner: the finding names no version for ${claim.component}`);
  const product = productFor(claim.component);
  const seen = (typeof banners === 'string' ? [banners] : banners).filter((b): b is string => typeof b === 'string' && b.trim() !== '');
  if (seen.length === 0) return { result: 'unknown', reason: 'the probe saw no banner', product: product.product };
  for (const banner of seen) {
    const m = product.version.exec(banner);
    if (!m) continue;
    const seenVersion = m[1]!.replace(/[.,;]+$/, '');
    const verdict = compareVersions(claim.version, seenVersion, product.portableSuffix === true);
    if (verdict === 'less precise') {
      return { result: 'unknown', reason: `the banner shows only ${seenVersion}, not precise enough for ${claim.version}`, product: product.product, seenVersion, banner };
    }
    return { result: verdict, product: product.product, seenVersion, banner };
  }
  const mentioned = seen.find((b) => product.mention.test(b));
  if (mentioned) return { result: 'unknown', reason: `the banner names ${product.product} without a version`, product: product.product, banner: mentioned };
  return { result: 'unknown', reason: `no banner names ${product.product}`, product: product.product, banner: seen.join(' | ') };
}

function normalizeName(component: string): string {
  return component
    .trim()
    .toLowerCase()
    .replace(/^cpe:2\.3:a:/, '')
    .replace(/[\s_-]+/g, ' ');
}

type Token = number | string;

/** Upstream version tokens: no epoch (`1:`), no distribution revision (`-21+deb9u1`, `-fips`). */
function versionTokens(version: string): Token[] {
  const core = version
    .trim()
    .toLowerCase()
    .replace(/^\d+:/, '')
    .replace(/[-+~ ].*$/, '');
  return [...core.matchAll(/(\d+)|([a-z]+)/g)].map((m) => (m[1] !== undefined ? Number(m[1]) : m[2]!));
}

function compareVersions(claimed: string, seen: string, portableSuffix: boolean): 'same' | 'different' | 'less precise' {
  let a = versionTokens(claimed);
  let b = versionTokens(seen);
  if (portableSuffix) {
    // 7.4p1 is the portable build of 7.4: compare the release when only one side names the build.
    const build = (t: Token[]) => t.length >= 2 && t.at(-2) === 'p' && typeof t.at(-1) === 'number';
    if (build(a) !== build(b)) {
      if (build(a)) a = a.slice(0, -2);
      else b = b.slice(0, -2);
    }
  }
  const shared = Math.min(a.length, b.length);
  for (let i = 0; i < shared; i++) if (a[i] !== b[i]) return 'different';
  // The finding names a branch (`2.4`) that the announced version (`2.4.49`) is on: still it.
  if (b.length >= a.length) return 'same';
  return 'less precise';
}
