import type { Concert } from "./Concert.js"

/**
 * What one concert's single writer knows of it: its details and how many seats are taken.
 * The concert entity holds it, the seat ledger's rules transform it, the journal stores it.
 */
export interface Ledger {
  readonly concert: Concert
  /** Bumped by every update of the concert's details; renders carry it to detect staleness. */
  readonly version: number
  /** Seats `1..sold` are taken: seats are handed out in order and never given back. */
  readonly sold: number
}
