/** Pre-registrations and the waiting line (ONSALE.md §4). */
import { Schema } from "effect"
import { ConcertId, Named, UserId, Uuid } from "./Ids.js"
import { Quantity, ReservationId } from "./Reservation.js"

export const RegistrationId = Uuid.pipe(Schema.brand("RegistrationId"))
export type RegistrationId = typeof RegistrationId.Type

export const RegistrationStatus = Schema.Literal("REGISTERED", "OFFERED", "WAITING", "PURCHASED", "EXPIRED", "WITHDRAWN")
export type RegistrationStatus = typeof RegistrationStatus.Type

/** Whether a registration still stands (a user has at most one such per concert). */
export const isLiveRegistration = (status: RegistrationStatus): boolean =>
  status === "REGISTERED" || status === "OFFERED" || status === "WAITING"

export class Registration extends Schema.Class<Registration>("Registration")({
  id: RegistrationId,
  concert_id: ConcertId,
  user_id: UserId,
  quantity: Schema.Int,
  status: RegistrationStatus,
  /** 1 = next in line, while WAITING; else null. */
  position: Schema.NullOr(Schema.Int),
  reservation_id: Schema.NullOr(ReservationId)
}) {}

/** A registration as its concert's entity holds and journals it. */
export class RegistrationRecord extends Schema.Class<RegistrationRecord>("RegistrationRecord")({
  id: RegistrationId,
  concertId: ConcertId,
  userId: UserId,
  quantity: Schema.Int,
  status: RegistrationStatus,
  /** Place in the waiting line (lower is sooner), once in it. */
  lineNo: Schema.NullOr(Schema.Number),
  reservationId: Schema.NullOr(ReservationId)
}) {
  /** As the API shows it; `position` is its place among those WAITING (null unless WAITING). */
  toRegistration(position: number | null): Registration {
    return new Registration({
      id: this.id,
      concert_id: this.concertId,
      user_id: this.userId,
      quantity: this.quantity,
      status: this.status,
      position,
      reservation_id: this.reservationId
    }, { disableValidation: true })
  }
}

export const Register = Schema.Struct({
  user_id: Named(UserId),
  quantity: Quantity
}).annotations({ identifier: "RegistrationRequest", parseOptions: { onExcessProperty: "error" } })

/** The draw's public record. */
export class DrawAudit extends Schema.Class<DrawAudit>("DrawAudit")({
  seed_sha256: Schema.String,
  /** The seed, 64 lowercase hex digits, once the draw has run. */
  seed: Schema.NullOr(Schema.String),
  drawn_at: Schema.NullOr(Schema.String),
  /** Registration ids in drawn order, once the draw has run. */
  order: Schema.NullOr(Schema.Array(RegistrationId))
}) {}
