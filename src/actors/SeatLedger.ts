/**
 * The allocation rules of one concert, as pure functions over its ledger. The concert entity is
 * the only writer: it plans a whole mailbox batch here, journals the plan, then adopts the
 * ledger the plan produced.
 */
import { Concert, type ConcertStatus, type UpdateConcert } from "../domain/Concert.js"
import type { Ledger } from "../domain/Ledger.js"

export type { Ledger }

export interface PurchaseRequest {
  readonly ticketId: string
  readonly userId: string
  readonly idempotencyKey?: string | undefined
}

/** What an earlier purchase with the same idempotency key bought. */
export interface KeyedTicket {
  readonly id: string
  readonly concertId: string
  readonly userId: string
}

export type Refusal = "SoldOut" | "Cancelled"

export type Outcome<T extends KeyedTicket = KeyedTicket> =
  /** A new ticket on `seat`, to be journaled. */
  | { readonly _tag: "Allocated"; readonly seat: number }
  /** The key already bought this ticket with the same body: answer with it. */
  | { readonly _tag: "Existing"; readonly ticket: T }
  /** The key already bought a ticket with another body. */
  | { readonly _tag: "KeyReused" }
  | { readonly _tag: "Refused"; readonly reason: Refusal }
  /** A repeat, in the same batch, of the request at `index`: answer as that one is answered. */
  | { readonly _tag: "SameAs"; readonly index: number }

export interface Plan<T extends KeyedTicket = KeyedTicket> {
  readonly ledger: Ledger
  readonly outcomes: ReadonlyArray<Outcome<T>>
  readonly allocated: number
}

export const remaining = (ledger: Ledger): number => ledger.concert.capacity - ledger.sold

/** Why this concert sells nothing now, if it does not. */
export const refusal = (ledger: Ledger): Refusal | undefined =>
  ledger.concert.status === "CANCELLED"
    ? "Cancelled"
    : ledger.concert.status === "SOLD_OUT" || remaining(ledger) <= 0
    ? "SoldOut"
    : undefined

/** The status a concert reads: a full concert reads SOLD_OUT unless it was cancelled. */
export const effectiveStatus = (requested: ConcertStatus, sold: number, capacity: number): ConcertStatus =>
  requested === "CANCELLED" ? "CANCELLED" : sold >= capacity ? "SOLD_OUT" : requested

/**
 * Decides a batch in arrival order. `existing` holds what earlier purchases with the batch's
 * idempotency keys bought (looked up in the journal before planning).
 */
export const plan = <T extends KeyedTicket>(
  ledger: Ledger,
  requests: ReadonlyArray<PurchaseRequest>,
  existing: ReadonlyMap<string, T>
): Plan<T> => {
  let sold = ledger.sold
  let allocated = 0
  const firstWithKey = new Map<string, number>()
  const closed = refusal(ledger)
  const outcomes = requests.map((request, index): Outcome<T> => {
    const key = request.idempotencyKey
    if (key !== undefined) {
      const earlier = existing.get(key)
      if (earlier !== undefined) {
        return earlier.concertId === ledger.concert.id && earlier.userId === request.userId
          ? { _tag: "Existing", ticket: earlier }
          : { _tag: "KeyReused" }
      }
      const first = firstWithKey.get(key)
      if (first !== undefined) {
        return requests[first]?.userId === request.userId ? { _tag: "SameAs", index: first } : { _tag: "KeyReused" }
      }
      firstWithKey.set(key, index)
    }
    if (closed !== undefined) return { _tag: "Refused", reason: closed }
    if (sold >= ledger.concert.capacity) return { _tag: "Refused", reason: "SoldOut" }
    sold += 1
    allocated += 1
    return { _tag: "Allocated", seat: sold }
  })
  if (allocated === 0) return { ledger, outcomes, allocated }
  const status = effectiveStatus(ledger.concert.status, sold, ledger.concert.capacity)
  return {
    ledger: { ...ledger, sold, concert: withStatus(ledger.concert, status) },
    outcomes,
    allocated
  }
}

const withStatus = (concert: Concert, status: ConcertStatus): Concert =>
  concert.status === status ? concert : new Concert({ ...concert, status })

/** The concert after an update: given fields replaced, the status as it will read. */
export const applyUpdate = (ledger: Ledger, update: UpdateConcert): Ledger => {
  // An organiser may close sales (SOLD_OUT) or cancel; reopening a full concert still reads SOLD_OUT.
  const status = effectiveStatus(update.status ?? ledger.concert.status, ledger.sold, ledger.concert.capacity)
  return {
    ...ledger,
    version: ledger.version + 1,
    concert: new Concert({
      ...ledger.concert,
      name: update.name ?? ledger.concert.name,
      venue: update.venue ?? ledger.concert.venue,
      date: update.date ?? ledger.concert.date,
      status
    })
  }
}
