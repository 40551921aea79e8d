#pragma once

// The functions of ../shared/docs/conformance-fixture.md, registered on a client. Shared by the
// `inngest-conformance-fixture` binary and the fixture-replay tests.

namespace inngest {
class Client;
}

namespace inngest_fixture {

/// Registers every fixture function (base five, protocol extras, feature-parity ones).
void register_fixture_functions(inngest::Client& client);

}  // namespace inngest_fixture
