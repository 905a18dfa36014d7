/**
 * What a concert entity holds between messages, with its transitions named: the ledger and the
 * reservations that hold seats are loaded from the journal on first use, adopted after each
 * journaled change, and forgotten after any failed write so that the next message starts again
 * from the journal.
 */
import { Effect, Option } from "effect"
import type { ConcertId } from "../domain/Ids.js"
import type { Ledger } from "../domain/Ledger.js"
import type { RegistrationRecord } from "../domain/Registration.js"
import { ReservationRecord } from "../domain/Reservation.js"
import type { ConcertJournal, JournalError } from "../sql/ConcertJournal.js"

export interface Loaded {
  readonly ledger: Ledger
  /** The reservations that hold seats now (HELD or AWAITING_PAYMENT), by id. */
  readonly live: ReadonlyMap<string, ReservationRecord>
  /** The registrations that stand (REGISTERED, OFFERED, WAITING), by id. */
  readonly registrations: ReadonlyMap<string, RegistrationRecord>
}

interface Held {
  ledger: Ledger
  live: Map<string, ReservationRecord>
  registrations: Map<string, RegistrationRecord>
  /** Live registrations by user: one each. */
  byUser: Map<string, string>
  /** OFFERED registrations by the reservation they were offered. */
  offers: Map<string, string>
  /** WAITING registrations in line order; rebuilt when the line changes. */
  line: Array<RegistrationRecord> | undefined
  /** The last place ever given in the line: places of people who left are not given again. */
  lastLineNo: number
  /** How many registrations are WAITING (without building the line). */
  waiting: number
  /** How many seats the live reservations hold (without adding them up). */
  heldSeats: number
}

export class ConcertState {
  /** `undefined`: not loaded (or forgotten); `None`: the concert does not exist (asked again next time). */
  private loaded: Option.Option<Held> | undefined = undefined

  constructor(
    private readonly concertId: ConcertId,
    private readonly journal: ConcertJournal
  ) {}

  /** The ledger and live reservations, loaded from the journal unless this entity holds them. */
  readonly current: Effect.Effect<Option.Option<Loaded>, JournalError> = Effect.suspend(() =>
    this.loaded !== undefined && Option.isSome(this.loaded)
      ? Effect.succeed(this.loaded)
      : Effect.map(
        Effect.all([
          this.journal.load(this.concertId),
          this.journal.liveReservations(this.concertId),
          this.journal.liveRegistrations(this.concertId),
          this.journal.lastLineNo(this.concertId)
        ]),
        ([ledger, rows, registrations, lastLineNo]) => {
          this.loaded = Option.map(ledger, (ledger): Held => {
            const held: Held = {
              ledger,
              live: new Map(rows.map((row) => [row.id, new ReservationRecord({ ...row, tickets: [] })])),
              registrations: new Map(),
              byUser: new Map(),
              offers: new Map(),
              line: undefined,
              lastLineNo,
              waiting: 0,
              heldSeats: rows.reduce((seats, row) => seats + row.quantity, 0)
            }
            for (const registration of registrations) ConcertState.put(held, registration)
            return held
          })
          return this.loaded
        }
      )
  )

  /** A change is journaled: it is what the concert is now. */
  adopt(next: Ledger): void {
    if (this.loaded !== undefined && Option.isSome(this.loaded)) this.loaded.value.ledger = next
  }

  /** A reservation now holds seats (or holds them in a new state). */
  hold(reservation: ReservationRecord): void {
    const held = this.held
    if (held === undefined) return
    held.heldSeats += reservation.quantity - (held.live.get(reservation.id)?.quantity ?? 0)
    held.live.set(reservation.id, reservation)
  }

  private static put(held: Held, registration: RegistrationRecord): void {
    const before = held.registrations.get(registration.id)
    if (before?.reservationId != null) held.offers.delete(before.reservationId)
    if (before?.status === "WAITING" || registration.status === "WAITING") held.line = undefined
    if (before?.status === "WAITING") held.waiting -= 1
    if (registration.status === "WAITING") held.waiting += 1
    held.registrations.set(registration.id, registration)
    held.byUser.set(registration.userId, registration.id)
    if (registration.lineNo !== null && registration.lineNo > held.lastLineNo) held.lastLineNo = registration.lineNo
    if (registration.status === "OFFERED" && registration.reservationId !== null) {
      held.offers.set(registration.reservationId, registration.id)
    }
  }

  private get held(): Held | undefined {
    return this.loaded !== undefined && Option.isSome(this.loaded) ? this.loaded.value : undefined
  }

  /** A registration that stands, new or in a new state. */
  register(registration: RegistrationRecord): void {
    const held = this.held
    if (held !== undefined) ConcertState.put(held, registration)
  }

  /** A registration that no longer stands (purchased, expired, withdrawn). */
  dropRegistration(registrationId: string): void {
    const held = this.held
    const registration = held?.registrations.get(registrationId)
    if (held === undefined || registration === undefined) return
    held.registrations.delete(registrationId)
    if (held.byUser.get(registration.userId) === registrationId) held.byUser.delete(registration.userId)
    if (registration.reservationId !== null) held.offers.delete(registration.reservationId)
    if (registration.status === "WAITING") {
      held.line = undefined
      held.waiting -= 1
    }
  }

  /** The registration offered this reservation, if one was. */
  offeredFor(reservationId: string): string | undefined {
    return this.held?.offers.get(reservationId)
  }

  /** Live registrations by user. */
  liveByUser(): ReadonlyMap<string, string> {
    return this.held?.byUser ?? new Map()
  }

  /** The WAITING registrations in line order. */
  line(): ReadonlyArray<RegistrationRecord> {
    const held = this.held
    if (held === undefined) return []
    if (held.line === undefined) {
      held.line = [...held.registrations.values()]
        .filter((r) => r.status === "WAITING")
        .sort((a, b) => (a.lineNo ?? 0) - (b.lineNo ?? 0))
    }
    return held.line
  }

  /** How many are in line, without building it. */
  waitingCount(): number {
    return this.held?.waiting ?? 0
  }

  /** The line number the next to join the back of the line gets. */
  nextLineNo(): number {
    return (this.held?.lastLineNo ?? 0) + 1
  }

  /** How many OFFERED registrations hold reservations. */
  offerCount(): number {
    return this.held?.offers.size ?? 0
  }

  /** A reservation no longer holds seats. */
  drop(reservationId: string): void {
    const held = this.held
    if (held === undefined) return
    held.heldSeats -= held.live.get(reservationId)?.quantity ?? 0
    held.live.delete(reservationId)
  }

  /** What is held now, if loaded. */
  snapshot(): Loaded | undefined {
    return this.held
  }

  /** The registrations that stand. */
  registrations(): ReadonlyMap<string, RegistrationRecord> {
    return this.held?.registrations ?? new Map()
  }

  /** How many seats the live reservations hold. */
  heldSeats(): number {
    return this.held?.heldSeats ?? 0
  }

  /** The earliest moment a live reservation expires, if any does. */
  earliestExpiry(): number | undefined {
    if (this.loaded === undefined || Option.isNone(this.loaded)) return undefined
    let earliest: number | undefined
    for (const r of this.loaded.value.live.values()) {
      if (r.expiresAt !== null && (earliest === undefined || r.expiresAt < earliest)) earliest = r.expiresAt
    }
    return earliest
  }

  /** A write failed or its outcome is unknown: believe only the journal from now on. */
  forget(): void {
    this.loaded = undefined
  }
}
