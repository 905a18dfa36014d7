import type { Concert } from "./Concert.js"
import type { Sale } from "./Sale.js"

/**
 * What one concert's single writer knows of it: its details, its sale settings and which seats
 * are taken (sold or held). The concert entity holds it, the seat ledger's rules transform it,
 * the journal stores it.
 */
export interface Ledger {
  readonly concert: Concert
  /** Bumped by every update of the concert's details; renders carry it to detect staleness. */
  readonly version: number
  readonly sale: Sale
  /** Seats `1..next` have been handed out; those in `free` came back (released holds). */
  readonly next: number
  /** Seats below `next` that are free again, ascending: they are handed out first. */
  readonly free: ReadonlyArray<number>
}

/** How many seats are sold or held. */
export const taken = (ledger: Ledger): number => ledger.next - ledger.free.length
