/**
 * The verifiable draw (ONSALE.md §4), as pure functions. The order of the registrations is by
 * HMAC-SHA256(key = the seed's 32 bytes, message = the registration id's UTF-8 text), ascending
 * as lowercase hex: anyone can recompute it from the revealed seed, and nobody can choose it
 * after the commitment (the seed's SHA-256) was published.
 */
import * as crypto from "node:crypto"

export const newSeed = (): Uint8Array => crypto.randomBytes(32)

/** The commitment published when a concert switches to DRAW: the seed's SHA-256, lowercase hex. */
export const commitment = (seed: Uint8Array): string => crypto.createHash("sha256").update(seed).digest("hex")

/** A registration's draw key: HMAC-SHA256 keyed with the seed, lowercase hex. */
export const drawKey = (seed: Uint8Array, registrationId: string): string =>
  crypto.createHmac("sha256", seed).update(registrationId, "utf8").digest("hex")

/** The registrations in drawn order. */
export const drawOrder = <R extends { readonly id: string }>(seed: Uint8Array, registrations: ReadonlyArray<R>): Array<R> =>
  registrations
    .map((registration) => ({ registration, key: drawKey(seed, registration.id) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ registration }) => registration)

/**
 * Walks a line in order: each registration whose quantity still fits in the free seats gets an
 * offer, the others keep their place. Used for the draw itself and for seats that come back.
 */
export const allocate = <R extends { readonly quantity: number }>(
  line: ReadonlyArray<R>,
  free: number
): { readonly offered: ReadonlyArray<R>; readonly waiting: ReadonlyArray<R> } => {
  const offered: Array<R> = []
  const waiting: Array<R> = []
  let left = free
  for (const registration of line) {
    if (registration.quantity <= left) {
      offered.push(registration)
      left -= registration.quantity
    } else {
      waiting.push(registration)
    }
  }
  return { offered, waiting }
}
