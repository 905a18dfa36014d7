import { Either, type ParseResult, Schema } from "effect"
import { ConcertId, Named, TicketId, UserId } from "./Ids.js"

export const PrintStatus = Schema.Literal("NOT_PRINTED", "PENDING", "PRINTED", "ERROR")
export type PrintStatus = typeof PrintStatus.Type

export class Link extends Schema.Class<Link>("Link")({
  id: Schema.String,
  url: Schema.String
}) {}

/** A ticket as the API shows it: links are built from the base URL the request came in on. */
export class Ticket extends Schema.Class<Ticket>("Ticket")({
  id: TicketId,
  concert: Link,
  user: Link,
  print_status: PrintStatus
}) {}

/** A ticket as the journal stores it, independent of any base URL. */
export class TicketRecord extends Schema.Class<TicketRecord>("TicketRecord")({
  id: TicketId,
  concertId: ConcertId,
  userId: UserId,
  seat: Schema.Int,
  printStatus: PrintStatus
}) {
  toTicket(base: string): Ticket {
    return new Ticket({
      id: this.id,
      concert: new Link({ id: this.concertId, url: `${base}/concerts/${this.concertId}` }),
      user: new Link({ id: this.userId, url: `${base}/users/${this.userId}` }),
      print_status: this.printStatus
    }, { disableValidation: true })
  }
}

/** The fields of a stored ticket that its API form shows. */
export interface TicketRow {
  readonly id: string
  readonly concertId: string
  readonly userId: string
  readonly printStatus: PrintStatus
}

/**
 * A ticket's JSON, exactly as `JSON.stringify(record.toTicket(base))` writes it, built as text:
 * lists write thousands at a time, and building (and validating) a `Ticket` each held the event
 * loop ten times longer. Ids are UUIDs and the status a fixed word; the rest is escaped.
 */
export const ticketJson = (ticket: TicketRow, base: string): string =>
  `{"id":"${ticket.id}","concert":{"id":"${ticket.concertId}","url":${JSON.stringify(`${base}/concerts/${ticket.concertId}`)}},` +
  `"user":{"id":${JSON.stringify(ticket.userId)},"url":${JSON.stringify(`${base}/users/${ticket.userId}`)}},` +
  `"print_status":"${ticket.printStatus}"}`

/** A purchase; ids that name nothing are answered 400 by what they name, not by their shape. */
export const PurchaseTicket = Schema.Struct({
  concert_id: Named(ConcertId),
  user_id: Named(UserId)
}).annotations({ identifier: "TicketPurchase", parseOptions: { onExcessProperty: "error" } })
export type PurchaseTicket = typeof PurchaseTicket.Type

/** A UUID's text, either case: what `ConcertId` decodes (lowercased) rather than keep as text. */
const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const decodePurchaseTicket = Schema.decodeUnknownEither(PurchaseTicket)

/**
 * `PurchaseTicket` decoded from a parsed JSON body: the commonest body (exactly the two ids, a
 * UUID and a non-empty user id) checked in plain code, which gives what the schema gives; any
 * other body through the schema itself. The schema's pass over a two-field body allocated more
 * than the rest of a purchase's decision (`docs/BENCHMARKS.md`).
 */
export const decodePurchase = (body: unknown): Either.Either<PurchaseTicket, ParseResult.ParseError> => {
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const { concert_id, user_id } = body as { readonly concert_id?: unknown; readonly user_id?: unknown }
    if (
      typeof concert_id === "string" && typeof user_id === "string" && user_id.length > 0 &&
      Object.keys(body).length === 2 && uuidText.test(concert_id)
    ) {
      return Either.right({
        concert_id: Either.right(concert_id.toLowerCase() as ConcertId),
        user_id: Either.right(user_id as UserId)
      })
    }
  }
  return decodePurchaseTicket(body)
}

/** An `Idempotency-Key` header value: printable, bounded. */
export const IdempotencyKey = Schema.String.pipe(
  Schema.filter((s) => /^[\x21-\x7e]{1,255}$/.test(s), {
    message: () => "must be 1 to 255 printable ASCII characters"
  })
)
