/**
 * The background work of a process that runs concerts: the render worker threads, the ticket
 * print queue and the seating-plan sweep, each for the concerts this process owns. A process
 * that serves HTTP only runs none of it.
 */
import { Layer } from "effect"
import { Ownership } from "../actors/Ownership.js"
import { PrintsRepo } from "../sql/PrintsRepo.js"
import { SeatingPlansRepo } from "../sql/SeatingPlansRepo.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { PrintQueue } from "./PrintQueue.js"
import { Renderer } from "./Renderer.js"
import { SeatingSweep } from "./SeatingPlans.js"

export const WorkersLive = Layer.merge(PrintQueue.Default, SeatingSweep).pipe(
  Layer.provide([Renderer.Live, PrintsRepo.Default, SeatingPlansRepo.Default, UserDirectory.Default, Ownership.Default])
)
