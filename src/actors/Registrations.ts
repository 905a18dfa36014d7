/**
 * What a concert decides for registrations (ONSALE.md §4), as a pure function beside
 * `SeatLedger`: before a draw they are REGISTERED; after it, or after a sell-out in any mode,
 * they join the waiting line at the back; a first-come concert with seats left sends people to
 * reserve them instead.
 */
import type { RegisterOrder } from "../domain/ConcertEntity.js"
import { AlreadyRegistered, ConcertCancelled, NotInLine, QuantityOverLimit } from "../domain/Errors.js"
import type { ConcertId } from "../domain/Ids.js"
import type { Ledger } from "../domain/Ledger.js"
import { RegistrationRecord } from "../domain/Registration.js"
import * as SeatLedger from "./SeatLedger.js"

export type RegistrationOutcome = RegistrationRecord | AlreadyRegistered | NotInLine | QuantityOverLimit | ConcertCancelled

export const planRegistrations = (
  concertId: ConcertId,
  ledger: Ledger,
  /** The user ids with a live registration for this concert, and that registration. */
  liveByUser: ReadonlyMap<string, string>,
  /** A live registration by id: a resent order finds its own registration there. */
  live: ReadonlyMap<string, RegistrationRecord>,
  /** The line number the next to join the line gets (asked only if someone joins). */
  nextLineNo: () => number,
  orders: ReadonlyArray<RegisterOrder>
): { readonly outcomes: ReadonlyArray<RegistrationOutcome>; readonly added: ReadonlyArray<RegistrationRecord> } => {
  // This batch's registrations over the concert's: no copy of a map of 100,000 per batch.
  const inBatch = new Map<string, string>()
  const added: Array<RegistrationRecord> = []
  let lineNo: number | undefined
  const joinLine = () => {
    lineNo ??= nextLineNo()
    return lineNo++
  }
  const { drawnAt, maxPerReservation, mode } = ledger.sale
  const soldOut = ledger.concert.status === "SOLD_OUT" || SeatLedger.remaining(ledger) <= 0
  const outcomes = orders.map((order): RegistrationOutcome => {
    if (ledger.concert.status === "CANCELLED") return ConcertCancelled.of()
    if (order.quantity > maxPerReservation) return QuantityOverLimit.of(maxPerReservation)
    const earlier = inBatch.get(order.userId) ?? liveByUser.get(order.userId)
    // The same order again (its message was resent after a loss): answered as it was.
    const same = earlier === order.registrationId ? live.get(earlier) : undefined
    if (same !== undefined) return same
    if (earlier !== undefined) return AlreadyRegistered.of(earlier)
    const status = mode === "DRAW" && drawnAt === null ? "REGISTERED" : mode === "DRAW" || soldOut ? "WAITING" : undefined
    if (status === undefined) return NotInLine.of()
    const record = new RegistrationRecord({
      id: order.registrationId,
      concertId,
      userId: order.userId,
      quantity: order.quantity,
      status,
      lineNo: status === "WAITING" ? joinLine() : null,
      reservationId: null
    }, { disableValidation: true })
    inBatch.set(order.userId, record.id)
    added.push(record)
    return record
  })
  return { outcomes, added }
}
