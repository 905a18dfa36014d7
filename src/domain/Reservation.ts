/** Reservations of several seats (ONSALE.md §2): as the API shows them, and as the journal keeps them. */
import { Schema } from "effect"
import { ConcertId, Named, UserId, Uuid } from "./Ids.js"
import { Link, Ticket, TicketRecord } from "./Ticket.js"

export const ReservationId = Uuid.pipe(Schema.brand("ReservationId"))
export type ReservationId = typeof ReservationId.Type

export const ReservationStatus = Schema.Literal("HELD", "AWAITING_PAYMENT", "CONFIRMED", "EXPIRED", "CANCELLED")
export type ReservationStatus = typeof ReservationStatus.Type

/** Whether a reservation in this status still holds its seats. */
export const isLive = (status: ReservationStatus): boolean => status === "HELD" || status === "AWAITING_PAYMENT"

export class Reservation extends Schema.Class<Reservation>("Reservation")({
  id: ReservationId,
  concert: Link,
  user: Link,
  quantity: Schema.Int,
  seats: Schema.Array(Schema.Int),
  status: ReservationStatus,
  expires_at: Schema.NullOr(Schema.String),
  invoice_number: Schema.NullOr(Schema.Int),
  tickets: Schema.Array(Ticket)
}) {}

/** A reservation as the journal stores it, independent of any base URL. */
export class ReservationRecord extends Schema.Class<ReservationRecord>("ReservationRecord")({
  id: ReservationId,
  concertId: ConcertId,
  userId: UserId,
  quantity: Schema.Int,
  seats: Schema.Array(Schema.Int),
  status: ReservationStatus,
  /** Epoch milliseconds while it holds seats. */
  expiresAt: Schema.NullOr(Schema.Number),
  invoiceNumber: Schema.NullOr(Schema.Int),
  tickets: Schema.Array(TicketRecord)
}) {
  toReservation(base: string): Reservation {
    return new Reservation({
      id: this.id,
      concert: new Link({ id: this.concertId, url: `${base}/concerts/${this.concertId}` }),
      user: new Link({ id: this.userId, url: `${base}/users/${this.userId}` }),
      quantity: this.quantity,
      seats: this.seats,
      status: this.status,
      expires_at: this.expiresAt === null ? null : new Date(this.expiresAt).toISOString(),
      invoice_number: this.invoiceNumber,
      tickets: this.tickets.map((ticket) => ticket.toTicket(base))
    }, { disableValidation: true })
  }
}

/** How many seats one reservation asks for: the hard limit; each concert's own is lower or equal. */
export const Quantity = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n), {
    message: () => "quantity must be a whole number from 1 to the concert's max_per_reservation"
  })
)

/** Whether a quantity can be asked for at all; the concert's limit is checked where it is known. */
export const wholeQuantity = (quantity: number): boolean => Number.isInteger(quantity) && quantity >= 1

export const ReserveSeats = Schema.Struct({
  concert_id: Named(ConcertId),
  user_id: Named(UserId),
  quantity: Quantity
}).annotations({ identifier: "ReservationRequest", parseOptions: { onExcessProperty: "error" } })
export type ReserveSeats = typeof ReserveSeats.Type

/** An invoice number and what holds it (ONSALE.md §3). */
export class Invoice extends Schema.Class<Invoice>("Invoice")({
  number: Schema.Int,
  reservation_id: Schema.NullOr(ReservationId),
  status: Schema.Literal("AWAITING_PAYMENT", "CONFIRMED", "RECYCLED")
}) {}

