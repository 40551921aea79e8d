// The approvals module's Inngest function: one generic interpreter of an instance's pinned
// definition. Step ids are "<what>:<node>#<visit>" so replays, retries and revisits are exact.

#include "modules/approvals/engine.hpp"

#include <inngest/inngest.hpp>

#include <map>

namespace riveredge::approvals {

using namespace std::chrono_literals;

namespace {

std::string single_next(const ProcessDefinition& definition, const std::string& node) {
    for (const auto& e : definition.edges) {
        if (e.source == node) {
            return e.target;
        }
    }
    throw inngest::NonRetriableError("node '" + node + "' has no outgoing flow");
}

// How long a user task sleeps before it re-reads the database anyway: bounds the latency of a
// decision whose event arrived before the wait existed, against the run's step budget.
constexpr auto kDecisionRecheck = 15min;

}  // namespace

void register_functions(inngest::Client& client, Engine& engine) {
    client.create_function(
        {.id = "approvals-instance",
         .name = "Run an approval instance",
         .triggers = {inngest::EventTrigger{kInstanceStarted}},
         .retries = 5},
        [&engine](inngest::Context& ctx) -> boost::json::value {
            // The event comes from our own service, which put the authenticated tenant in it.
            const auto tenant =
                core::TenantId::trusted(std::string(ctx.event.data.at("tenant_id").as_string()));
            const std::int64_t id = ctx.event.data.at("instance_id").to_number<std::int64_t>();
            const auto plan = ctx.step.run("load", [&] { return engine.load(tenant, id); });
            const auto definition = ProcessDefinition::from_json(plan.at("definition").as_object());
            const auto& variables = plan.at("variables").as_object();
            const std::string initiator(plan.at("initiator").as_string());

            std::string current;
            for (const auto& node : definition.nodes) {
                if (node.type == "startEvent") {
                    current = node.id;
                }
            }
            std::map<std::string, int> visits;
            for (int hops = 0; hops < 500; ++hops) {
                const FlowNode* node = definition.node(current);
                const int visit = ++visits[current];
                const std::string tag = current + "#" + std::to_string(visit);
                if (node->type == "startEvent") {
                    current = single_next(definition, current);
                } else if (node->type == "endEvent") {
                    return ctx.step.run("finish:" + tag, [&] {
                        return engine.finish(tenant, id, "completed", node->id, "finish:" + tag);
                    });
                } else if (node->type == "exclusiveGateway") {
                    current = ctx.step.run("decide:" + tag, [&] {
                        return engine.choose(definition, *node, variables);
                    });
                } else if (node->type == "userTask") {
                    ctx.step.run("enter:" + tag, [&] {
                        return engine.enter_user_task(tenant, id, *node, visit, variables,
                                                      initiator);
                    });
                    std::string outcome = ctx.step.run("check:" + tag + ":0", [&] {
                        return engine.outcome(tenant, id, node->id, visit);
                    });
                    for (int i = 1; outcome == "pending" && i < 300; ++i) {
                        ctx.step.wait_for_event(
                            "wait:" + tag + ":" + std::to_string(i),
                            {.event = kTaskDecided,
                             .timeout = kDecisionRecheck,
                             .if_expression = "async.data.instance_id == " + std::to_string(id) +
                                              " && async.data.node_id == '" + node->id + "'"});
                        outcome = ctx.step.run("check:" + tag + ":" + std::to_string(i), [&] {
                            return engine.outcome(tenant, id, node->id, visit);
                        });
                    }
                    if (outcome == "rejected") {
                        return ctx.step.run("finish:" + tag, [&] {
                            return engine.finish(tenant, id, "rejected", node->id, "finish:" + tag);
                        });
                    }
                    if (outcome != "approved") {
                        break;
                    }
                    current = single_next(definition, current);
                } else {
                    return ctx.step.run("unsupported:" + tag, [&] {
                        return engine.finish(tenant, id, "failed", node->id, "unsupported:" + tag);
                    });
                }
            }
            return ctx.step.run(
                "stalled", [&] { return engine.finish(tenant, id, "failed", current, "stalled"); });
        });
}

}  // namespace riveredge::approvals
