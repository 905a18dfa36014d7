import { expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { TicketId, ConcertId, UserId } from "../../src/domain/Ids.js"
import { PrintStatus, ticketJson, TicketRecord } from "../../src/domain/Ticket.js"

it.prop(
  "a ticket's JSON written as text is byte for byte what JSON.stringify writes of the Ticket",
  [
    fc.uuid(),
    fc.uuid(),
    fc.string({ minLength: 1, unit: "binary" }),
    fc.constantFrom(...PrintStatus.literals),
    fc.oneof(fc.constant("http://localhost:8080/api/v1"), fc.string({ unit: "binary" }))
  ],
  ([id, concertId, userId, printStatus, base]) => {
    const record = new TicketRecord({
      id: TicketId.make(id),
      concertId: ConcertId.make(concertId),
      userId: UserId.make(userId),
      seat: 1,
      printStatus
    })
    expect(ticketJson(record, base)).toBe(JSON.stringify(record.toTicket(base)))
  }
)
