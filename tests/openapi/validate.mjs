// Validates an OpenAPI document (a file path argument) against the OpenAPI 3.0 schema and the
// rules a client generator relies on; prints each problem and exits 1 when there is one.
import SwaggerParser from "@apidevtools/swagger-parser";
import { readFileSync } from "node:fs";

const document = JSON.parse(readFileSync(process.argv[2], "utf8"));
try {
    const api = await SwaggerParser.validate(document);
    console.log(`valid OpenAPI ${api.openapi}: ${Object.keys(api.paths).length} paths`);
} catch (error) {
    console.error(error.message);
    for (const detail of error.details ?? []) {
        console.error(JSON.stringify(detail));
    }
    process.exit(1);
}
