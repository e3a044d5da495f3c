import { isObject, str, type Json } from './json.js';

// The base image an image is built from, as the OCI image spec's pre-defined annotations name it.
// Builders write them as image labels (and as manifest annotations); scanners report the labels.

/** The image an image is built `FROM`: its reference, and its manifest digest when known. */
export interface BaseImage {
  image: string;
  digest?: string;
}

export const BASE_NAME = 'org.opencontainers.image.base.name';
export const BASE_DIGEST = 'org.opencontainers.image.base.digest';

/** `registry/repo:tag`, `repo@sha256:...`: one reference, no spaces or list separators. */
export const isImageReference = (s: string): boolean => /^[a-z0-9][a-z0-9._\-/:@]*$/i.test(s) && !s.endsWith(':') && !s.endsWith('/');

/** `sha256:<hex>` out of a digest or a digested reference (`repo@sha256:<hex>`). */
export function imageDigestOf(text: string | undefined): string | undefined {
  const match = text ? /sha256:[0-9a-f]{64}/i.exec(text) : null;
  return match ? match[0].toLowerCase() : undefined;
}

/**
 * The base image named by the first label map that names one. A label that is empty or not an
 * image reference is ignored: a scanner report is never refused for a builder's label.
 */
export function baseImageOf(...labelMaps: unknown[]): BaseImage | undefined {
  for (const labels of labelMaps) {
    if (!isObject(labels)) continue;
    const image = str(labels[BASE_NAME])?.trim();
    if (!image || !isImageReference(image)) continue;
    const digest = imageDigestOf(str((labels as Json)[BASE_DIGEST])) ?? imageDigestOf(image);
    return digest ? { image, digest } : { image };
  }
  return undefined;
}
