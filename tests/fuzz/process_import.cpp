// The process-format importer (import_definition with "seed"): `process` + `elements`, the JSON
// process format of the planning documents. Input: JSON bytes; bytes that are not JSON are
// skipped.
//
// A document is imported or refused with ImportError; "auto" picks the same import for a
// document with `elements`. An imported definition passes the checks of definition_checks.hpp.

#include "definition_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto source = inngest::fuzz::parse_json(data, size);
    if (!source) {
        return 0;
    }
    const auto definition = inngest::fuzz::import_as(*source, "seed");
    if (source->is_object() && source->get_object().contains("elements")) {
        const auto automatic = inngest::fuzz::import_as(*source, "auto");
        FUZZ_CHECK(automatic.has_value() == definition.has_value());
        FUZZ_CHECK(!automatic || automatic->to_json() == definition->to_json());
    }
    if (definition) {
        inngest::fuzz::check_definition(*definition);
    }
    return 0;
}
