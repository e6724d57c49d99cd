// A till's day, once over HTTP/JSON and once over gRPC, with the generated client: identify
// a customer by phone, calculate a check, process it, process it again (the retry answers
// the same transaction), cancel another, refund a line, upload an offline day as a stream
// (gRPC), and show a refusal's reason and field.
//
//   PURSE_HTTP_URL=http://127.0.0.1:8080 PURSE_GRPC_URL=http://127.0.0.1:50051 \
//   PURSE_TERMINAL_KEY=purse_key_... PURSE_PHONE=+380501234567 node dist/till_day.js
//
// Prints one JSON line per step: {"transport", "step", ...what the step saw}.
import { create } from "@bufbuild/protobuf";
import {
  CheckLineSchema,
  CheckSchema,
  fieldViolationsOf,
  reasonOf,
  terminalClient,
  TransactionStatus,
} from "./index.js";

function setting(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

function print(transport: string, step: string, seen: Record<string, unknown>): void {
  console.log(JSON.stringify({ transport, step, ...seen }));
}

async function tillDay(transport: string, baseUrl: string, grpc: boolean): Promise<void> {
  const terminal = terminalClient({ baseUrl, apiKey: setting("PURSE_TERMINAL_KEY"), grpc });
  const identifier = { value: { case: "phone" as const, value: setting("PURSE_PHONE") } };
  const identified = await terminal.identifyCustomer({ identifier });
  print(transport, "identify", {
    customerId: identified.membership?.customerId.toString(),
    phone: identified.membership?.phone,
  });

  const lines = [
    create(CheckLineSchema, {
      position: 1,
      productCode: "COFFEE",
      priceMinorUnits: 4_500n,
      quantityThousandths: 2_000n,
    }),
    create(CheckLineSchema, {
      position: 2,
      productCode: "CAKE",
      priceMinorUnits: 9_000n,
      quantityThousandths: 1_000n,
    }),
  ];
  const check = create(CheckSchema, { currency: "UAH", lines });
  const calculated = await terminal.calculateCheck({ identifier, check });
  print(transport, "calculate", {
    sumMinorUnits: calculated.receipt?.sumMinorUnits.toString(),
    toPayMinorUnits: calculated.receipt?.toPayMinorUnits.toString(),
    pointsAccruedHundredths: calculated.receipt?.pointsAccruedHundredths.toString(),
  });

  const checkNumber = `ts-${transport}-${Date.now()}`;
  const processed = await terminal.processCheck({ checkNumber, identifier, check });
  const retried = await terminal.processCheck({ checkNumber, identifier, check });
  print(transport, "process", {
    checkNumber,
    transactionId: processed.transaction?.transactionId.toString(),
    retryTransactionId: retried.transaction?.transactionId.toString(),
    status: TransactionStatus[processed.transaction?.status ?? TransactionStatus.UNSPECIFIED],
  });

  const cancelled = await terminal.cancelTransaction({
    transactionId: (await terminal.processCheck({ checkNumber: `${checkNumber}-C`, identifier, check }))
      .transaction?.transactionId,
  });
  print(transport, "cancel", {
    status: TransactionStatus[cancelled.transaction?.status ?? TransactionStatus.UNSPECIFIED],
  });

  const refunded = await terminal.refundTransaction({
    transactionId: processed.transaction?.transactionId,
    refundNumber: `${checkNumber}-R`,
    lines: [{ position: 1, quantityThousandths: 1_000n }],
  });
  print(transport, "refund", {
    refundedMinorUnits: refunded.refund?.refundedMinorUnits.toString(),
    status: TransactionStatus[refunded.transaction?.status ?? TransactionStatus.UNSPECIFIED],
  });

  if (grpc) {
    // An offline day as a stream (gRPC; over HTTP/1.1 the stream is NDJSON, see the cookbook).
    const day = new Date(Date.now() - 2 * 3_600_000);
    async function* offlineDay() {
      for (const hour of [1, 2, 3]) {
        yield {
          checks: [
            {
              checkNumber: `${checkNumber}-OFF-${hour}`,
              identifier,
              check,
              saleTime: { seconds: BigInt(Math.floor(day.getTime() / 1000)), nanos: 0 },
            },
          ],
        };
      }
    }
    const results: string[] = [];
    for await (const answer of terminal.processChecks(offlineDay())) {
      results.push(...answer.results.map((result) => result.outcome.case ?? "none"));
    }
    print(transport, "stream", { results });
  }

  try {
    await terminal.identifyCustomer({ identifier: { value: { case: "phone", value: "12ab" } } });
    print(transport, "refusal", { refused: false });
  } catch (error) {
    print(transport, "refusal", {
      refused: true,
      reason: reasonOf(error),
      fields: Object.keys(fieldViolationsOf(error)),
    });
  }
}

await tillDay("http-json", setting("PURSE_HTTP_URL"), false);
await tillDay("grpc", setting("PURSE_GRPC_URL"), true);
