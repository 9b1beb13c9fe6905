//! Stage splitting, args, --target closure, order and cycles.

use std::collections::BTreeMap;

use berth_build::{plan, Base, BuildOptions, Dockerfile, Platform, StageError};

fn opts(args: &[(&str, &str)], target: Option<&str>) -> BuildOptions {
    BuildOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        target: target.map(str::to_string),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        target_platform: Some(Platform::parse("linux/arm64").unwrap()),
    }
}

fn df(text: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", text).unwrap()
}

const MULTI: &str = "\
ARG CODE_VERSION=latest
ARG REG
FROM --platform=$BUILDPLATFORM base:${CODE_VERSION} AS Build
ARG CODE_VERSION
RUN make
FROM extras:${CODE_VERSION} AS tools
FROM build AS test
COPY --from=tools /t /t
FROM alpine AS unrelated
FROM scratch AS final
ARG SRC=build
COPY --from=$SRC /out /out
RUN --mount=type=bind,from=0,target=/x true
";

#[test]
fn global_args_expand_from_lines() {
    let p = plan(&df(MULTI), &opts(&[("CODE_VERSION", "1.2")], None)).unwrap();
    assert_eq!(p.stages.len(), 5);
    assert_eq!(p.stages[0].name.as_deref(), Some("build"));
    assert_eq!(p.stages[0].base, Base::Image("base:1.2".into()));
    assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(p.stages[1].base, Base::Image("extras:1.2".into()));
    assert_eq!(p.stages[2].base, Base::Stage(0));
    assert_eq!(p.stages[4].base, Base::Scratch);
    assert_eq!(p.global_args.get("TARGETARCH"), Some("arm64"));
    let p = plan(&df(MULTI), &opts(&[], None)).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("base:latest".into()));
}

#[test]
fn target_closure_and_order() {
    let p = plan(&df(MULTI), &opts(&[], None)).unwrap();
    assert_eq!(p.target, 4);
    // final needs build (COPY --from=$SRC and --mount from=0).
    assert_eq!(p.order, vec![0, 4]);
    let p = plan(&df(MULTI), &opts(&[], Some("TEST"))).unwrap();
    assert_eq!(p.order, vec![0, 1, 2]);
    let p = plan(&df(MULTI), &opts(&[("SRC", "tools")], None)).unwrap();
    assert_eq!(p.order, vec![0, 1, 4]);
    assert_eq!(
        plan(&df(MULTI), &opts(&[], Some("nope"))).unwrap_err(),
        StageError::UnknownTarget("nope".into())
    );
}

#[test]
fn cycles_are_detected() {
    let text = "FROM a AS one\nCOPY --from=two / /\nFROM one AS two\n";
    let e = plan(&df(text), &opts(&[], None)).unwrap_err();
    assert!(matches!(e, StageError::Cycle(_)), "{e}");
    assert!(e
        .to_string()
        .starts_with("circular dependency detected on stage"));
}

#[test]
fn unused_build_args() {
    let p = plan(
        &df(MULTI),
        &opts(
            &[
                ("CODE_VERSION", "1"),
                ("FOO", "x"),
                ("HTTP_PROXY", "p"),
                ("BUILDKIT_INLINE_CACHE", "1"),
                ("ZED", ""),
            ],
            None,
        ),
    )
    .unwrap();
    assert_eq!(p.unused_build_args, vec!["FOO", "ZED"]);
}

#[test]
fn stage_errors() {
    let e = plan(&df("RUN x\nFROM a\n"), &opts(&[], None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:1: RUN: no build stage in current context"
    );
    let e = plan(&df("ARG A\n"), &opts(&[], None)).unwrap_err();
    assert_eq!(e, StageError::NoStages);
    let e = plan(&df("FROM a AS x\nFROM b AS X\n"), &opts(&[], None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: FROM: duplicate stage name \"x\""
    );
    let e = plan(&df("ARG IMG\nFROM $IMG\n"), &opts(&[], None)).unwrap_err();
    assert!(e.to_string().contains("should not be blank"), "{e}");
    let e = plan(&df("FROM ${IMG:?required}\n"), &opts(&[], None)).unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:1: FROM: IMG: required");
}

#[test]
fn from_by_index_and_global_redeclared() {
    let text = "ARG V=1\nFROM a\nARG V\nENV X=$V\nFROM 0\n";
    let p = plan(&df(text), &opts(&[], None)).unwrap();
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(p.order, vec![0, 1]);
}
