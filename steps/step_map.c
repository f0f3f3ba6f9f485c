// step_map.c: where a chapter sits on the map of the model (common/draw/diagram.h), said at the start of every
// chapter: one printed line naming its box, OUT/<id>/where.png (the small map with the chapter's boxes highlighted),
// and the model's facts in trace.json ("config"), from which export-notebook draws the page's map.
#include "step.h"

#include <stdlib.h>
#include <string.h>

#include "draw/diagram.h"

void step_map_model(const Step *s, DiagramModel *m) {
    diagram_model_from_config(m, s->cfg, s->model_dir, s->T);
    const char *names[DIAGRAM_MAX_TENSORS];
    int n = diagram_tensors(m, names, DIAGRAM_MAX_TENSORS);
    for (int i = 0; i < n; i++) {  // the dtypes as stored (a tied output.weight is tok_embeddings.weight)
        const Tensor *t = checkpoint_find(&s->ck, names[i]);
        if (!t && s->cfg->tie_word_embeddings && strcmp(names[i], "output.weight") == 0)
            t = checkpoint_find(&s->ck, "tok_embeddings.weight");
        if (t) diagram_model_set_dtype(m, names[i], dtype_name(t->dtype));
    }
}

void step_map(Step *s) {
    DiagramModel m;
    step_map_model(s, &m);
    char *json = diagram_model_to_json(&m);
    trace_set_config_json(s->trace, json);  // not by a chapter that stands apart (TraceRun.apart, step_init)
    free(json);
    const DiagramChapter *c = diagram_chapter(s->id);
    char *line = diagram_where_line(&m, s->id, s->lang);
    if (!c || !line) return;  // a chapter the map does not know yet (tests/unit/test_diagram.c fails for it)
    if (c->whole_map) {
        step_say(s, "%s   %s", line, step_text(s, "(the whole map: architecture.png)", "（整张结构图：architecture.png）"));
    } else {
        char *path = step_path(s, "where.png");
        diagram_mini_png(path, &m, s->id, s->lang);
        free(path);
        trace_image(s->trace, s->id, "where.png", step_text(s, "where this chapter sits on the map", "本章在结构图中的位置"));
        step_say(s, "%s   [where.png]", line);
    }
    free(line);
}
