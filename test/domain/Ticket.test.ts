import { expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { TicketId, ConcertId, UserId } from "../../src/domain/Ids.js"
import { decodePurchase, PrintStatus, PurchaseTicket, ticketJson, TicketRecord } from "../../src/domain/Ticket.js"

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

const purchaseBody = fc.record(
  {
    concert_id: fc.oneof(fc.uuid(), fc.uuid().map((id) => id.toUpperCase()), fc.string(), fc.integer(), fc.constant(null)),
    user_id: fc.oneof(fc.string(), fc.constant(""), fc.integer(), fc.constant(null)),
    extra: fc.jsonValue()
  },
  { requiredKeys: [] }
)

it.prop(
  "a purchase body decodes in plain code to what the endpoint's schema decodes it to, whatever the body",
  [fc.oneof(purchaseBody, purchaseBody.map((body) => JSON.parse(JSON.stringify(body))), fc.jsonValue())],
  ([body]) => {
    const fast = decodePurchase(body)
    const schema = Schema.decodeUnknownEither(PurchaseTicket)(body)
    expect(fast._tag).toBe(schema._tag)
    if (Either.isRight(fast) && Either.isRight(schema)) expect(fast.right).toStrictEqual(schema.right)
  },
  { fastCheck: { numRuns: 2000 } }
)

it("the commonest body takes the plain code and gives the schema's ids: lowercased, or the text as sent", () => {
  const concert = "9E6B1A4C-0C39-4F53-9B4C-2F3E3A1B7D10"
  expect(decodePurchase({ concert_id: concert, user_id: "u-1" })).toStrictEqual(
    Either.right({ concert_id: Either.right(concert.toLowerCase()), user_id: Either.right("u-1") })
  )
  expect(decodePurchase({ concert_id: "not-a-uuid", user_id: "u-1" })).toStrictEqual(
    Either.right({ concert_id: Either.left("not-a-uuid"), user_id: Either.right("u-1") })
  )
  expect(Either.isLeft(decodePurchase({ concert_id: concert, user_id: "u-1", seat: 3 }))).toBe(true)
})
