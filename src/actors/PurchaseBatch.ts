/**
 * What a planned batch of purchases means, as pure functions beside `SeatLedger`: the answer to
 * each order, and the rows the journal must write before any answer is sent.
 */
import type { PurchaseOrder, PurchaseOutcome } from "../domain/ConcertEntity.js"
import { ConcertCancelled, IdempotencyKeyReused, SoldOut } from "../domain/Errors.js"
import type { ConcertId } from "../domain/Ids.js"
import { TicketRecord } from "../domain/Ticket.js"
import type { JournalRow } from "../sql/ConcertJournal.js"
import type * as SeatLedger from "./SeatLedger.js"

// Refusals carry no data of their own: one of each serves every loser of every batch.
const soldOut = SoldOut.of()
const cancelled = ConcertCancelled.of()
const keyReused = IdempotencyKeyReused.of()

/** The answer to each order of a journaled plan, in order (a repeat answers as its first). */
export const outcomesOf = (
  concertId: ConcertId,
  orders: ReadonlyArray<PurchaseOrder>,
  plan: SeatLedger.Plan<TicketRecord>
): ReadonlyArray<PurchaseOutcome> => {
  const outcomes: Array<PurchaseOutcome> = []
  plan.outcomes.forEach((outcome, i) => {
    const { ticketId, userId } = orders[i]!
    switch (outcome._tag) {
      case "Allocated":
        // Fields already decoded at the RPC boundary: no second validation on the hot path.
        outcomes.push(
          new TicketRecord(
            { id: ticketId, concertId, userId, seat: outcome.seat, printStatus: "NOT_PRINTED" },
            { disableValidation: true }
          )
        )
        break
      case "Existing":
        outcomes.push(outcome.ticket)
        break
      case "KeyReused":
        outcomes.push(keyReused)
        break
      case "Refused":
        outcomes.push(outcome.reason === "Cancelled" ? cancelled : soldOut)
        break
      case "SameAs":
        outcomes.push(outcomes[outcome.index]!)
    }
  })
  return outcomes
}

/** The tickets a plan sells, as the journal writes them: the allocated orders, in order. */
export const journalRows = (
  orders: ReadonlyArray<PurchaseOrder>,
  plan: SeatLedger.Plan<TicketRecord>
): ReadonlyArray<JournalRow> =>
  plan.outcomes.flatMap((outcome, i) => {
    if (outcome._tag !== "Allocated") return []
    const { idempotencyKey, ticketId, userId } = orders[i]!
    return [{ id: ticketId, seat: outcome.seat, userId, idempotencyKey }]
  })
