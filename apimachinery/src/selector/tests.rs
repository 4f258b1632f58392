use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sel(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn err(s: &str) -> SelectorError {
    LabelSelector::parse(s).expect_err(s)
}

/// Which of `candidates` the selector matches, as indices.
fn matching(s: &str, candidates: &[BTreeMap<String, String>]) -> Vec<usize> {
    let selector = sel(s);
    (0..candidates.len())
        .filter(|&i| selector.matches(&candidates[i]))
        .collect()
}

fn pods() -> Vec<BTreeMap<String, String>> {
    vec![
        labels(&[("app", "web"), ("n", "3")]),
        labels(&[("app", "db"), ("n", "10")]),
        labels(&[("other", "x")]),
        labels(&[("app", ""), ("n", "x")]),
    ]
}

#[test]
fn empty_selector_matches_everything() {
    for s in ["", "   ", "\t\n\r "] {
        let selector = sel(s);
        assert!(selector.is_empty());
        assert!(selector.requirements().is_empty());
        assert_eq!(matching(s, &pods()), vec![0, 1, 2, 3]);
        assert_eq!(selector.to_string(), "");
    }
    assert!(LabelSelector::default().matches(&labels(&[])));
}

#[test]
fn equality_operators() {
    assert_eq!(matching("app=web", &pods()), vec![0]);
    assert_eq!(matching("app==web", &pods()), vec![0]);
    assert_eq!(sel("app==web").requirements()[0].op(), LabelOp::DoubleEquals);
    // `!=` matches objects without the key, as in Kubernetes.
    assert_eq!(matching("app!=web", &pods()), vec![1, 2, 3]);
}

#[test]
fn empty_values() {
    assert_eq!(matching("app=", &pods()), vec![3]);
    assert_eq!(matching("app!=", &pods()), vec![0, 1, 2]);
    assert_eq!(matching("app=,n=x", &pods()), vec![3]);
    assert_eq!(sel("app=").requirements()[0].values(), [""]);
    assert_eq!(matching("app in (,web)", &pods()), vec![0, 3]);
    assert_eq!(sel("app in (web,)").requirements()[0].values(), ["", "web"]);
    assert_eq!(sel("app in (a,,b)").requirements()[0].values(), ["", "a", "b"]);
    assert_eq!(sel("app in (,)").requirements()[0].values(), [""]);
}

#[test]
fn set_operators() {
    assert_eq!(matching("app in (web,db)", &pods()), vec![0, 1]);
    assert_eq!(matching("app in (web)", &pods()), vec![0]);
    // `notin` matches objects without the key, as in Kubernetes.
    assert_eq!(matching("app notin (web,db)", &pods()), vec![2, 3]);
    let selector = sel("app in (web,db,web)");
    let req = &selector.requirements()[0];
    assert_eq!((req.key(), req.op()), ("app", LabelOp::In));
    assert_eq!(req.values(), ["db", "web"]);
}

#[test]
fn existence_operators() {
    assert_eq!(matching("app", &pods()), vec![0, 1, 3]);
    assert_eq!(matching("!app", &pods()), vec![2]);
    assert_eq!(matching("! app", &pods()), vec![2]);
    assert_eq!(matching("app,!other", &pods()), vec![0, 1, 3]);
    assert_eq!(sel("!app").requirements()[0].op(), LabelOp::DoesNotExist);
    assert_eq!(sel("app").requirements()[0].op(), LabelOp::Exists);
}

#[test]
fn ordering_operators() {
    // Labels that are missing or not integers never match.
    assert_eq!(matching("n>5", &pods()), vec![1]);
    assert_eq!(matching("n<5", &pods()), vec![0]);
    assert_eq!(matching("n>3", &pods()), vec![1]);
    assert_eq!(matching("n<3", &pods()), Vec::<usize>::new());
    assert_eq!(matching("n>05", &pods()), vec![1]);
    let negative = labels(&[("n", "-7")]);
    assert!(sel("n<0").matches(&negative));
    assert!(matches!(err("n>x"), SelectorError::InvalidValue { pos: 2, .. }));
    assert!(matches!(err("n>"), SelectorError::InvalidValue { pos: 2, .. }));
    assert!(matches!(err("n<-1"), SelectorError::InvalidValue { .. }));
    assert!(matches!(
        err("n>99999999999999999999"),
        SelectorError::InvalidValue { .. }
    ));
}

#[test]
fn several_requirements_are_anded() {
    assert_eq!(matching("app in (web,db),n>5", &pods()), vec![1]);
    assert_eq!(matching("app,app!=db,n", &pods()), vec![0, 3]);
}

#[test]
fn whitespace_between_tokens() {
    let spaced = sel("  app  in  ( web ,  db )  ,\tn\n>\r5 , ! other  ");
    assert_eq!(spaced, sel("app in (web,db),n>5,!other"));
    assert_eq!(sel("app = web"), sel("app=web"));
    assert_eq!(sel("app in(web)"), sel("app in (web)"));
    assert_eq!(sel("app notin(web)").requirements()[0].op(), LabelOp::NotIn);
}

#[test]
fn in_and_notin_are_also_keys_and_values() {
    let selector = sel("in=notin,notin in (in)");
    let both = labels(&[("in", "notin"), ("notin", "in")]);
    assert!(selector.matches(&both));
    assert_eq!(selector.to_string(), "in=notin,notin in (in)");
}

#[test]
fn key_validation() {
    let ok = sel("example.com/app=x,a.b-c_d=1,a/B=2,k8s.io/x");
    assert_eq!(ok.requirements().len(), 4);
    assert!(sel(&format!("{}=x", "k".repeat(63))).matches(&labels(&[(&"k".repeat(63), "x")])));
    let bad = [
        "-app=x",
        "app-=x",
        "a@b=x",
        "/app=x",
        "example.com/=x",
        "a/b/c=x",
        "Example.com/app=x",
        "exa_mple.com/app=x",
        "example..com/app=x",
        "!-a",
        "é=x",
    ];
    for s in bad {
        assert!(matches!(err(s), SelectorError::InvalidKey { pos: 0 | 1, .. }), "{s}");
    }
    let long_name = format!("{}=x", "k".repeat(64));
    assert!(err(&long_name).to_string().contains("no more than 63"));
    let long_prefix = format!("{}/a=x", "p".repeat(254));
    assert!(err(&long_prefix).to_string().contains("no more than 253"));
}

#[test]
fn value_validation() {
    assert!(sel("a=A.b-c_9").matches(&labels(&[("a", "A.b-c_9")])));
    assert!(sel(&format!("a={}", "v".repeat(63))).requirements().len() == 1);
    for s in ["a=-x", "a=x-", "a=x/y", "a in (ok,_x)", "a=é"] {
        assert!(matches!(err(s), SelectorError::InvalidValue { .. }), "{s}");
    }
    let long = format!("a={}", "v".repeat(64));
    assert!(matches!(err(&long), SelectorError::InvalidValue { pos: 2, .. }));
    assert!(matches!(
        err("a in (ok, _x)"),
        SelectorError::InvalidValue { pos: 10, .. }
    ));
}

#[test]
fn syntax_errors_name_token_and_position() {
    let cases = [
        ("a=b,", "found end of string at byte 4, expected a label key or '!'"),
        (",a", "found ',' at byte 0, expected a label key or '!'"),
        ("a,,b", "found ',' at byte 2, expected a label key or '!'"),
        ("a=b c", "found 'c' at byte 4, expected ',' or end of string"),
        ("a in (x", "found end of string at byte 7, expected ',' or ')'"),
        ("a in x)", "found 'x' at byte 5, expected '(' to open the value set"),
        ("a in (x))", "found ')' at byte 8, expected ',' or end of string"),
        ("a in ((x)", "found '(' at byte 6, expected a value, ',' or ')'"),
        ("a in (x y)", "found 'y' at byte 8, expected ',' or ')'"),
        ("a in (,,)", "found ')' at byte 8, expected a value or ','"),
        (
            "a in",
            "found end of string at byte 4, expected '(' to open the value set",
        ),
        ("a=(x)", "found '(' at byte 2, expected a value"),
        ("a>=1", "found '=' at byte 2, expected a value"),
        ("!a=b", "found '=' at byte 2, expected ',' or end of string"),
        ("!!a", "found '!' at byte 1, expected a label key after '!'"),
        ("a=b)", "found ')' at byte 3, expected ',' or end of string"),
        (")", "found ')' at byte 0, expected a label key or '!'"),
    ];
    for (input, message) in cases {
        assert_eq!(err(input).to_string(), message, "{input}");
    }
}

#[test]
fn unknown_operators() {
    for (input, pos, found) in [("a ~ b", 2, "~"), ("a (b)", 2, "("), ("a ! b", 2, "!")] {
        let e = err(input);
        assert_eq!(
            e,
            SelectorError::UnknownOperator {
                pos,
                found: found.into()
            }
        );
        assert!(e.to_string().contains(&format!("'{found}' at byte {pos}")), "{e}");
    }
    assert!(matches!(
        err("a ins (b)"),
        SelectorError::UnknownOperator { pos: 2, .. }
    ));
}

#[test]
fn empty_set_is_rejected() {
    let e = err("a in ()");
    assert_eq!(
        e,
        SelectorError::EmptySet {
            pos: 5,
            key: "a".into()
        }
    );
    assert!(e.to_string().contains("'a'"));
    assert!(matches!(err("a notin ( )"), SelectorError::EmptySet { pos: 8, .. }));
}

#[test]
fn display_is_canonical() {
    assert_eq!(sel("c in (y,x),!d,a=b").to_string(), "a=b,c in (x,y),!d");
    let all = sel(" z<3 , y>2, x , !w, v notin (b, a), u==1, t!=2, s=3, r in (,q) ");
    let text = "r in (,q),s=3,t!=2,u==1,v notin (a,b),!w,x,y>2,z<3";
    assert_eq!(all.to_string(), text);
    assert_eq!(sel(text), all);
    // Requirements on one key keep their order.
    assert_eq!(sel("b,a=2,a=1").to_string(), "a=2,a=1,b");
    // The lone empty value round-trips through `(,)`.
    assert_eq!(sel("k in (,)").to_string(), "k in (,)");
    assert_eq!("k=".parse::<LabelSelector>().map(|s| s.to_string()), Ok("k=".into()));
}

#[test]
fn labels_implementations_agree() {
    let pairs = vec![("app".to_string(), "web".to_string())];
    let hash: HashMap<String, String> = pairs.iter().cloned().collect();
    let tree: BTreeMap<String, String> = pairs.iter().cloned().collect();
    let slice: &[(String, String)] = &pairs;
    for s in ["app=web", "app!=web", "app", "!app", "x notin (y)", "app in (db)"] {
        let selector = sel(s);
        let expected = selector.matches(&tree);
        assert_eq!(selector.matches(&hash), expected, "{s}");
        assert_eq!(selector.matches(&pairs), expected, "{s}");
        assert_eq!(selector.matches(slice), expected, "{s}");
    }
    let duplicated = vec![("a".to_string(), "1".to_string()), ("a".into(), "2".into())];
    assert!(sel("a=1").matches(&duplicated));
}

#[test]
fn too_long() {
    let ok = format!("a in ({})", vec!["b"; (MAX_SELECTOR_LEN - 6) / 2].join(","));
    assert!(ok.len() <= MAX_SELECTOR_LEN);
    assert!(LabelSelector::parse(&ok).is_ok());
    let long = "a".repeat(MAX_SELECTOR_LEN + 1);
    let e = LabelSelector::parse(&long).expect_err("too long");
    assert_eq!(
        e,
        SelectorError::TooLong {
            len: MAX_SELECTOR_LEN + 1
        }
    );
    assert_eq!(FieldSelector::parse(&long), Err(e.clone()));
    assert!(e.to_string().contains("8193 bytes"));
}

fn fields(s: &str) -> FieldSelector {
    FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn req(field: &str, op: FieldOp, value: &str) -> FieldRequirement {
    FieldRequirement {
        field: field.into(),
        op,
        value: value.into(),
    }
}

#[test]
fn field_operators() {
    let pod = |f: &str| match f {
        "metadata.name" => Some("web-0"),
        "metadata.namespace" => Some("default"),
        _ => None,
    };
    assert!(fields("metadata.name=web-0").matches(pod));
    assert!(fields("metadata.name==web-0").matches(pod));
    assert!(!fields("metadata.name!=web-0").matches(pod));
    assert!(fields("metadata.name!=web-1,metadata.namespace=default").matches(pod));
    assert!(!fields("metadata.name=web-0,metadata.namespace=kube-system").matches(pod));
    let parsed = fields("metadata.name==a,metadata.namespace!=b");
    let expected = [
        req("metadata.name", FieldOp::Eq, "a"),
        req("metadata.namespace", FieldOp::NotEq, "b"),
    ];
    assert_eq!(parsed.requirements(), expected);
}

#[test]
fn field_missing_counts_as_empty() {
    let nothing = |_: &str| None;
    assert!(fields("spec.nodeName=").matches(nothing));
    assert!(!fields("spec.nodeName=n1").matches(nothing));
    assert!(fields("spec.nodeName!=n1").matches(nothing));
}

#[test]
fn field_getter_may_borrow_from_the_object() {
    let object = BTreeMap::from([("metadata.name".to_string(), "web-0".to_string())]);
    let get = |f: &str| object.get(f).map(String::as_str);
    assert!(fields("metadata.name=web-0").matches(get));
}

#[test]
fn field_empty_and_empty_terms() {
    for s in ["", ",", ",,"] {
        assert!(fields(s).is_empty(), "{s:?}");
        assert!(fields(s).matches(|_| Some("x")));
    }
    assert_eq!(fields("a=b,").requirements(), [req("a", FieldOp::Eq, "b")]);
    assert_eq!(fields(",a=b,,c=d").requirements().len(), 2);
    // Whitespace is data, as in apimachinery.
    assert_eq!(fields(" a = b").requirements(), [req(" a ", FieldOp::Eq, " b")]);
    assert_eq!(fields("=b").requirements(), [req("", FieldOp::Eq, "b")]);
}

#[test]
fn field_escaping() {
    let parsed = fields(r"a=x\,y\=z\\w,b!=\\");
    let expected = [req("a", FieldOp::Eq, r"x,y=z\w"), req("b", FieldOp::NotEq, r"\")];
    assert_eq!(parsed.requirements(), expected);
    assert!(parsed.matches(|f| (f == "a").then_some(r"x,y=z\w")));
    assert_eq!(parsed.to_string(), r"a=x\,y\=z\\w,b!=\\");
    assert_eq!(fields("a=é").requirements()[0].value, "é");
}

#[test]
fn field_errors() {
    let missing = SelectorError::MissingOperator {
        pos: 4,
        term: "abc".into(),
    };
    assert_eq!(FieldSelector::parse("a=b,abc"), Err(missing));
    let bad_escape = SelectorError::InvalidEscape {
        pos: 2,
        sequence: r"\x".into(),
    };
    assert_eq!(FieldSelector::parse(r"a=\x"), Err(bad_escape));
    let trailing = SelectorError::InvalidEscape {
        pos: 3,
        sequence: r"\".into(),
    };
    assert_eq!(FieldSelector::parse(r"a=b\"), Err(trailing));
    let bare = SelectorError::UnescapedChar { pos: 3, ch: '=' };
    assert_eq!(FieldSelector::parse("a=b=c"), Err(bare.clone()));
    assert_eq!(
        bare.to_string(),
        r"unescaped '=' at byte 3 in field selector value, write '\='"
    );
    // `a!==b` splits at `!=`, leaving the bare `=` in the value.
    assert!(matches!(
        FieldSelector::parse("a!==b"),
        Err(SelectorError::UnescapedChar { .. })
    ));
    assert!(FieldSelector::parse(" ").is_err());
}

#[test]
fn field_display_is_canonical() {
    let parsed = fields(r"b==2,a!=1,c=x\,y");
    assert_eq!(parsed.to_string(), r"a!=1,b=2,c=x\,y");
    assert_eq!(fields(&parsed.to_string()), parsed);
    assert_eq!("".parse::<FieldSelector>().map(|s| s.to_string()), Ok(String::new()));
}

/// Calls `check` with every string of up to `max_len` pieces from `alphabet`.
fn each_string(alphabet: &[&str], max_len: u32, mut check: impl FnMut(&str)) {
    let base = alphabet.len();
    let mut s = String::new();
    for len in 0..=max_len {
        for mut n in 0..base.pow(len) {
            s.clear();
            for _ in 0..len {
                s.push_str(alphabet[n % base]);
                n /= base;
            }
            check(&s);
        }
    }
}

fn check_label_input(s: &str) {
    let Ok(selector) = LabelSelector::parse(s) else {
        return;
    };
    selector.matches(&labels(&[("a", "1"), ("b/a", "")]));
    let text = selector.to_string();
    assert_eq!(LabelSelector::parse(&text), Ok(selector), "{s:?} printed as {text:?}");
}

fn check_field_input(s: &str) {
    let Ok(selector) = FieldSelector::parse(s) else {
        return;
    };
    selector.matches(|f| (f == "a").then_some("x"));
    let text = selector.to_string();
    let mut again = FieldSelector::parse(&text).expect(&text).requirements().to_vec();
    let mut reqs = selector.requirements().to_vec();
    again.sort();
    reqs.sort();
    assert_eq!(again, reqs, "{s:?} printed as {text:?}");
}

#[test]
fn never_panics_and_round_trips() {
    let tokens = ["a", "b/", "in", "notin", "=", "!", "(", ")", ",", " ", ">", "1", "é"];
    each_string(&tokens, 5, check_label_input);
    let chars = ["a", "=", "!", "(", ")", ",", " ", "\\", "é"];
    each_string(&chars, 6, |s| {
        check_label_input(s);
        check_field_input(s);
        let errors = [LabelSelector::parse(s).err(), FieldSelector::parse(s).err()];
        assert!(errors.iter().flatten().all(|e| !e.to_string().is_empty()));
    });
}
