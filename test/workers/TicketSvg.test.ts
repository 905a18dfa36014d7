import { describe, expect, it } from "@effect/vitest"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import { renderTicket, type TicketDetails } from "../../src/workers/TicketSvg.js"
import { decodeQr, decodeVerticalCode128 } from "../fixtures/Decode.js"

const details: TicketDetails = {
  ticketId: "a4c5211f-2402-4de9-9664-b9e78454da35",
  concert: { id: "786d3bb4-a858-49ba-8803-15ffa2ec3678", name: "Dwayne \"The Rock\" <Live> & Friends", date: "2027-06-07", venue: "O'Reilly Arena" },
  user: { name: "Zoë \"Z\" <O'Brien>", email: "zoe&co@example.org" }
}

const parse = (svg: string) =>
  new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "", textNodeName: "#text" }).parse(svg) as {
    svg: { width: string; height: string; xmlns: string; desc: string; text: Array<{ "#text": string }> }
  }

describe("renderTicket", () => {
  const svg = renderTicket(details)

  it("is well-formed XML: a 1200×518 SVG whose desc is exactly the ticket id", () => {
    expect(XMLValidator.validate(svg)).toBe(true)
    const { svg: root } = parse(svg)
    expect(root.xmlns).toBe("http://www.w3.org/2000/svg")
    expect([root.width, root.height]).toEqual(["1200", "518"])
    expect(root.desc).toBe(details.ticketId)
  })

  it("shows the concert, the holder and the ticket id, escaped text read back unchanged", () => {
    const texts = parse(svg).svg.text.map((t) => t["#text"])
    expect(texts).toEqual([
      details.concert.name,
      details.concert.date,
      details.concert.venue,
      details.concert.id,
      details.user.name,
      details.user.email,
      details.ticketId
    ])
  })

  it("carries the ticket id in a scannable QR code and Code128 barcode", () => {
    expect(decodeQr(svg, { x: 20, y: 300, width: 160, height: 160 })).toBe(details.ticketId)
    expect(decodeVerticalCode128(svg, { x: 985, y: 25, width: 180, height: 470 })).toBe(details.ticketId)
  })
})
