//! The association rules driven directly on the embedded store, with the testkit's doubles
//! (a fixed clock, ids in order, a store that fails when told): no HTTP, no WeChat.

use super::*;
use crate::ids::OpenPlatformId;
use crate::items::membership;
use crate::model::{AppKind, Owner};
use crate::testkit::{mini_program, openid_of, unionid_of, Ports, SeqIds, EPOCH_MILLIS};

const OP: &str = "op_platform";

/// The platform's `n`th mini program, of the open platform `OP`.
/// A view without its version tag (a tag changes with every write; the rest is what counts).
fn strip(v: &PersonView) -> PersonView {
    PersonView { version: None, ..v.clone() }
}

fn mp(n: usize) -> App {
    mini_program(&format!("wxmp{n:014}"), Some(OP))
}

fn mps(range: std::ops::Range<usize>) -> Vec<App> {
    range.map(mp).collect()
}

async fn login(p: &Ports, app: &App, openid: &str, unionid: Option<&str>) -> Result<Resolved, Error> {
    p.assoc().login(app, &openid_of(openid), unionid.map(unionid_of).as_ref(), Via::Jscode2session).await
}

/// A new person with one openid (`<tag>-<i>`) in each of `apps`: logged in to the first,
/// linked to the others.
async fn person_in(p: &Ports, apps: &[App], tag: &str) -> PersonView {
    let mut view = login(p, &apps[0], &format!("{tag}-0"), None).await.unwrap().view;
    for (i, app) in apps.iter().enumerate().skip(1) {
        let openid = openid_of(&format!("{tag}-{i}"));
        view = p.assoc().link(app, &openid, None, &view.person, Via::WebAuth).await.unwrap();
    }
    assert_eq!(view.linked.len(), apps.len());
    view
}

async fn head(p: &Ports, person: &PersonId) -> Person {
    let it = p.store.get(&person::key(person)).await.unwrap().expect("the person item");
    Person::from_item(person, &it).unwrap()
}

async fn memberships(p: &Ports, person: &PersonId) -> Vec<Membership> {
    let items = p.store.query(&person::pk(person), membership::PREFIX).await.unwrap();
    items.iter().map(|it| Membership::from_item(person, it).unwrap()).collect()
}

/// The SKs of a person's partition.
async fn partition_sks(p: &Ports, person: &PersonId) -> Vec<String> {
    p.assoc().partition(person).await.unwrap().iter().filter_map(|it| sk(it).map(str::to_owned)).collect()
}

async fn conflicts(p: &Ports, person: &PersonId) -> Vec<Item> {
    p.store.query(&conflict::pk(person), "").await.unwrap()
}

/// The person an (app, openid) names as stored, and the person it resolves to now.
async fn stored_and_resolved(p: &Ports, app: &App, openid: &str) -> (PersonId, PersonId) {
    let ident = p.assoc().identity(&app.appid, &openid_of(openid)).await.unwrap().expect("the identity");
    let now = p.assoc().view(&ident.person).await.unwrap().person;
    (ident.person, now)
}

#[tokio::test]
async fn a_first_login_creates_one_person_with_its_identity_membership_and_unionid() {
    let p = Ports::new();
    let app = mp(1);
    let r = login(&p, &app, "o1", Some("u1")).await.unwrap();

    let person = SeqIds::nth_person(1);
    assert!(r.new_person);
    assert_eq!(r.view.person, person);
    assert_eq!(r.view.created_millis, EPOCH_MILLIS);
    let linked = Linked {
        appid: app.appid.clone(),
        openid: openid_of("o1"),
        kind: AppKind::MiniProgram,
        owner: Owner::Platform,
        via: Via::Jscode2session,
        at_millis: EPOCH_MILLIS,
    };
    assert_eq!(r.view.linked, std::slice::from_ref(&linked));
    assert_eq!((&r.identity.person, r.identity.unionid.as_ref()), (&person, Some(&unionid_of("u1"))));

    let stored = p.assoc().identity(&app.appid, &openid_of("o1")).await.unwrap().unwrap();
    assert_eq!(stored, r.identity);
    assert_eq!(memberships(&p, &person).await, [Membership { person: person.clone(), linked }]);
    let op = OpenPlatformId::parse(OP).unwrap();
    let union = p.store.get(&union::key(&op, &unionid_of("u1"))).await.unwrap().unwrap();
    assert_eq!(union::owner(&union).unwrap(), Some(person.clone()));
    assert_eq!(partition_sks(&p, &person).await, [format!("A#{}", app.appid), "P".into(), format!("U#{OP}#u1")]);
    let h = head(&p, &person).await;
    assert_eq!((h.merged_into, h.merging), (None, None));
}

#[tokio::test]
async fn a_first_login_in_an_app_without_an_open_platform_keeps_no_unionid() {
    let p = Ports::new();
    let app = mini_program("wxlonely0000000001", None);
    let r = login(&p, &app, "o1", Some("u1")).await.unwrap();
    assert!(r.new_person);
    assert_eq!(r.identity.unionid, None);
    let stored = p.assoc().identity(&app.appid, &openid_of("o1")).await.unwrap().unwrap();
    assert_eq!(stored.unionid, None);
    assert_eq!(partition_sks(&p, &r.view.person).await, [format!("A#{}", app.appid), "P".into()]);
}

#[tokio::test]
async fn logging_in_again_finds_the_same_person_and_writes_nothing_new() {
    let p = Ports::new();
    let first = login(&p, &mp(1), "o1", Some("u1")).await.unwrap();
    let before = p.assoc().partition(&first.view.person).await.unwrap();
    let again = login(&p, &mp(1), "o1", Some("u1")).await.unwrap();
    assert!(!again.new_person);
    assert_eq!(strip(&again.view), strip(&first.view));
    assert_eq!(again.identity, first.identity);
    assert_eq!(p.assoc().partition(&first.view.person).await.unwrap(), before);
}

#[tokio::test]
async fn a_second_app_of_the_same_open_platform_joins_the_person_by_unionid() {
    let p = Ports::new();
    let first = login(&p, &mp(1), "o1", Some("u1")).await.unwrap();
    let second = login(&p, &mp(2), "o2", Some("u1")).await.unwrap();
    assert!(!second.new_person);
    assert_eq!(second.view.person, first.view.person);
    assert_eq!(second.view.linked.iter().map(|l| l.openid.as_str()).collect::<Vec<_>>(), ["o1", "o2"]);
    assert_eq!(second.identity.unionid, Some(unionid_of("u1")));
    assert_eq!(stored_and_resolved(&p, &mp(2), "o2").await, (first.view.person.clone(), first.view.person.clone()));
    assert_eq!(strip(&p.assoc().view(&first.view.person).await.unwrap()), strip(&second.view));
}

#[tokio::test]
async fn the_same_unionid_in_another_open_platform_is_another_person() {
    let p = Ports::new();
    let first = login(&p, &mp(1), "o1", Some("u1")).await.unwrap();
    let merchant = mini_program("wxmerchant00000001", Some("op_merchant"));
    let other = login(&p, &merchant, "o2", Some("u1")).await.unwrap();
    assert!(other.new_person);
    assert_ne!(other.view.person, first.view.person);
}

/// Makes a person of apps `older`, then one of apps `younger`, and merges them naming each
/// first in turn, each time on a fresh store: per order, the ports, both persons and the result.
async fn merge_in_both_orders(
    older: std::ops::Range<usize>,
    younger: std::ops::Range<usize>,
) -> Vec<(Ports, PersonView, PersonView, PersonView)> {
    let mut runs = vec![];
    for older_first in [true, false] {
        let p = Ports::new();
        let o = person_in(&p, &mps(older.clone()), "older").await;
        let y = person_in(&p, &mps(younger.clone()), "younger").await;
        assert!(o.person < y.person);
        let (a, b) = if older_first { (o.clone(), y.clone()) } else { (y.clone(), o.clone()) };
        let merged = p.assoc().merge(a, b).await.unwrap().expect("no race");
        runs.push((p, o, y, merged));
    }
    runs
}

/// Everything of `loser` moved to `winner`, and `seen` is the survivor as every reader sees it.
async fn assert_moved(p: &Ports, winner: &PersonView, loser: &PersonView, seen: &PersonView) {
    assert_eq!(seen.person, winner.person);
    assert_eq!(seen.linked.len(), winner.linked.len() + loser.linked.len());
    assert_eq!(head(p, &loser.person).await.merged_into, Some(winner.person.clone()));
    assert_eq!(head(p, &winner.person).await.merging, None, "the mark is gone");
    assert!(memberships(p, &loser.person).await.is_empty(), "nothing is left on the loser");
    for l in loser.linked.iter().chain(&winner.linked) {
        let ident = p.assoc().identity(&l.appid, &l.openid).await.unwrap().expect("the identity");
        assert_eq!(ident.person, winner.person, "{} points at the survivor", l.openid);
    }
    assert_eq!(
        strip(&p.assoc().view(&loser.person).await.unwrap()),
        strip(seen),
        "the old id resolves to the survivor"
    );
    assert_eq!(strip(&p.assoc().view(&winner.person).await.unwrap()), strip(seen));
}

#[tokio::test]
async fn the_person_with_fewer_identities_moves_into_the_other_whichever_is_named_first() {
    // The smaller person is the older: size decides before age.
    for (p, small, big, merged) in merge_in_both_orders(1..2, 2..4).await {
        assert_moved(&p, &big, &small, &merged).await;
    }
}

#[tokio::test]
async fn between_persons_of_equal_size_the_younger_moves_into_the_older() {
    for (p, older, younger, merged) in merge_in_both_orders(1..3, 3..5).await {
        assert_moved(&p, &older, &younger, &merged).await;
    }
}

#[tokio::test]
async fn linking_an_identity_of_another_person_merges_the_two() {
    let p = Ports::new();
    let mine = person_in(&p, &mps(1..3), "mine").await;
    let theirs = person_in(&p, &mps(3..4), "theirs").await;
    let merged = p.assoc().link(&mp(3), &openid_of("theirs-0"), None, &mine.person, Via::WebAuth).await.unwrap();
    assert_eq!(merged.person, mine.person);
    assert_eq!(merged.linked.len(), 3);
    assert_eq!(head(&p, &theirs.person).await.merged_into, Some(mine.person.clone()));
    assert_eq!(stored_and_resolved(&p, &mp(3), "theirs-0").await, (mine.person.clone(), mine.person.clone()));
}

#[tokio::test]
async fn a_merge_that_would_give_one_person_two_openids_of_an_app_is_refused_and_recorded() {
    let p = Ports::new();
    let a = person_in(&p, &mps(1..3), "a").await;
    // The same app, another openid.
    let b = person_in(&p, &[mp(1)], "b").await;
    p.clock.advance(std::time::Duration::from_secs(1));

    let e = p.assoc().merge(a.clone(), b.clone()).await.unwrap_err();

    assert!(matches!(e, Error::IdentityConflict), "{e:?}");
    for (v, n) in [(&a, 2), (&b, 1)] {
        let h = head(&p, &v.person).await;
        assert_eq!((h.merged_into, h.merging), (None, None), "nothing merged");
        assert_eq!(memberships(&p, &v.person).await.len(), n, "nothing moved");
        assert_eq!(strip(&p.assoc().view(&v.person).await.unwrap()), strip(v));
    }
    let recorded = conflicts(&p, &a.person).await;
    assert_eq!(recorded.len(), 1);
    let c = &recorded[0];
    assert_eq!(c.s(conflict::APPID), Some(mp(1).appid.as_str()));
    assert_eq!(c.s(conflict::DURING), Some("merge"));
    assert_eq!(c.s(conflict::OTHER), Some(b.person.as_str()));
    assert_eq!(c.n(conflict::AT), Some(EPOCH_MILLIS + 1000));
    // Its twin under the other person, so erasing either finds it.
    let twin = conflicts(&p, &b.person).await;
    assert_eq!((twin.len(), twin[0].s("SK"), twin[0].s(conflict::OTHER)), (1, c.s("SK"), Some(a.person.as_str())));
}

#[tokio::test]
async fn linking_another_openid_of_an_app_the_person_holds_is_refused_and_recorded() {
    let p = Ports::new();
    let mine = person_in(&p, &mps(1..3), "mine").await;
    let theirs = person_in(&p, &[mp(2)], "theirs").await;
    let e = p.assoc().link(&mp(2), &openid_of("theirs-0"), None, &mine.person, Via::WebAuth).await.unwrap_err();
    assert!(matches!(e, Error::IdentityConflict), "{e:?}");
    assert_eq!(head(&p, &theirs.person).await.merged_into, None);
    assert_eq!(stored_and_resolved(&p, &mp(2), "theirs-0").await, (theirs.person.clone(), theirs.person.clone()));
    let recorded = conflicts(&p, &mine.person).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].s(conflict::OTHER), Some(theirs.person.as_str()));
}

#[tokio::test]
async fn a_unionid_learnt_later_merges_the_person_it_already_names() {
    let p = Ports::new();
    let without = login(&p, &mp(1), "o1", None).await.unwrap();
    let with = login(&p, &mp(2), "o2", Some("u1")).await.unwrap();
    assert_ne!(without.view.person, with.view.person);

    let r = login(&p, &mp(1), "o1", Some("u1")).await.unwrap();

    assert!(!r.new_person);
    assert_eq!(r.view.person, without.view.person, "equal sizes: the older survives");
    assert_eq!(r.view.linked.len(), 2);
    assert_eq!(r.identity.unionid, Some(unionid_of("u1")));
    let stored = p.assoc().identity(&mp(1).appid, &openid_of("o1")).await.unwrap().unwrap();
    assert_eq!(stored.unionid, Some(unionid_of("u1")));
    // The unionid still names the person merged away, which resolves to the survivor.
    let again = login(&p, &mp(3), "o3", Some("u1")).await.unwrap();
    assert_eq!(again.view.person, without.view.person);
    assert_eq!(again.view.linked.len(), 3);
}

#[tokio::test]
async fn a_login_that_would_give_a_person_a_second_openid_of_an_app_is_refused_and_recorded() {
    let p = Ports::new();
    let first = login(&p, &mp(1), "o1", Some("u1")).await.unwrap();
    p.clock.advance(std::time::Duration::from_millis(7));

    // The unionid names a person that holds another openid of this app.
    let e = login(&p, &mp(1), "o2", Some("u1")).await.unwrap_err();

    assert!(matches!(e, Error::IdentityConflict), "{e:?}");
    let person = &first.view.person;
    assert_eq!(p.assoc().identity(&mp(1).appid, &openid_of("o2")).await.unwrap(), None, "nothing linked");
    assert_eq!(strip(&p.assoc().view(person).await.unwrap()), strip(&first.view));
    let recorded = conflicts(&p, person).await;
    assert_eq!(recorded.len(), 1);
    let c = &recorded[0];
    assert_eq!(c.s(conflict::APPID), Some(mp(1).appid.as_str()));
    assert_eq!(c.s(conflict::DURING), Some("login"));
    assert_eq!(c.s(conflict::OTHER), None);
    assert_eq!(c.n(conflict::AT), Some(EPOCH_MILLIS + 7));
}

/// A winner of `MOVE_CHUNK + 6` apps and a loser of `MOVE_CHUNK + 5` others, whose merge the
/// store stops after the first chunk moved.
async fn interrupted_merge(p: &Ports) -> (PersonView, PersonView) {
    let loser = person_in(p, &mps(0..MOVE_CHUNK + 5), "l").await;
    let winner = person_in(p, &mps(MOVE_CHUNK + 5..2 * MOVE_CHUNK + 11), "w").await;
    // The merge's first transaction marks both persons, the second moves a chunk, the third fails.
    p.store.fail_transact(3);
    let e = p.assoc().merge(loser.clone(), winner.clone()).await.unwrap_err();
    assert!(matches!(e, Error::StoreUnavailable), "{e:?}");
    p.store.heal();

    assert_eq!(head(p, &loser.person).await.merged_into, Some(winner.person.clone()));
    assert_eq!(head(p, &winner.person).await.merging, Some(loser.person.clone()));
    assert_eq!(memberships(p, &loser.person).await.len(), 5, "stopped half-way");
    assert_eq!(memberships(p, &winner.person).await.len(), winner.linked.len() + MOVE_CHUNK);
    (winner, loser)
}

/// Stops a chunked merge half-way, then views one of its two persons once.
async fn stop_a_merge_then_view(the_loser: bool) {
    let p = Ports::new();
    let (winner, loser) = interrupted_merge(&p).await;
    let viewed = if the_loser { &loser.person } else { &winner.person };
    let seen = p.assoc().view(viewed).await.unwrap();
    assert_moved(&p, &winner, &loser, &seen).await;
}

#[tokio::test]
async fn a_chunked_merge_stopped_half_way_is_finished_by_the_next_view_of_the_loser() {
    stop_a_merge_then_view(true).await;
}

#[tokio::test]
async fn a_chunked_merge_stopped_half_way_is_finished_by_the_next_view_of_the_winner() {
    stop_a_merge_then_view(false).await;
}

#[tokio::test]
async fn a_chunked_merge_stopped_half_way_is_finished_by_a_login_to_a_moved_identity() {
    let p = Ports::new();
    let (winner, loser) = interrupted_merge(&p).await;
    let r = login(&p, &mp(0), "l-0", None).await.unwrap();
    assert!(!r.new_person);
    assert_moved(&p, &winner, &loser, &r.view).await;
}

#[tokio::test]
async fn a_merge_decided_on_stale_reads_rereads_and_refuses_the_clash_it_would_have_missed() {
    let p = Ports::new();
    let winner = person_in(&p, &mps(1..4), "w").await;
    let loser = person_in(&p, &mps(4..5), "l").await;
    // After the views were read, the loser gained an openid of an app the winner holds.
    p.assoc().link(&mp(1), &openid_of("late"), None, &loser.person, Via::WebAuth).await.unwrap();

    let e = p.assoc().merge(loser.clone(), winner.clone()).await.unwrap_err();

    assert!(matches!(e, Error::IdentityConflict), "{e:?}");
    for v in [&winner, &loser] {
        let h = head(&p, &v.person).await;
        assert_eq!((h.merged_into, h.merging), (None, None), "nothing merged");
    }
    assert_eq!(memberships(&p, &loser.person).await.len(), 2, "nothing moved");
    let recorded = conflicts(&p, &loser.person).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].s(conflict::DURING), Some("merge"));
    assert_eq!(recorded[0].s(conflict::APPID), Some(mp(1).appid.as_str()));
    assert_eq!(conflicts(&p, &winner.person).await.len(), 1, "the record is found from either person");
}

#[tokio::test]
async fn a_merge_does_not_start_when_a_membership_changed_after_the_settled_read() {
    let p = Ports::new();
    let a = person_in(&p, &mps(1..3), "a").await;
    let b = person_in(&p, &mps(3..4), "b").await;
    let fresh = p.assoc().view(&b.person).await.unwrap();
    // Another attach tags the person anew: a merge start conditioned on the old tag is refused.
    p.assoc().link(&mp(9), &openid_of("b-9"), None, &b.person, Via::WebAuth).await.unwrap();
    let mut start = crate::items::Tx::new();
    start.add(crate::items::person::start_losing(&b.person, fresh.version.as_deref(), &a.person, "t"));
    assert!(start.commit(&*p.store).await.unwrap_err().is_race());
    assert_eq!(head(&p, &b.person).await.merged_into, None);
}

#[tokio::test]
async fn a_long_merge_chain_resolves_and_is_compressed_on_read() {
    let p = Ports::new();
    let root = person_in(&p, &mps(1..2), "root").await;
    // 500 persons, each merged into the next: older than any bound on hops.
    let ids: Vec<PersonId> = (0..500).map(|_| p.ids.person()).collect();
    for (i, id) in ids.iter().enumerate() {
        let next = ids.get(i + 1).unwrap_or(&root.person);
        let mut it = Person::new(id.clone(), EPOCH_MILLIS);
        it.merged_into = Some(next.clone());
        p.store.write(crate::store::Write::Put { item: it.to_item(), cond: vec![] }).await.unwrap();
    }
    let seen = p.assoc().view(&ids[0]).await.unwrap();
    assert_eq!(seen.person, root.person);
    for id in &ids {
        assert_eq!(head(&p, id).await.merged_into.as_ref(), Some(&root.person), "every hop points at the root now");
    }
}

#[tokio::test]
async fn a_refused_link_of_a_pass_leaves_nothing_of_its_identities() {
    let p = Ports::new();
    let mallory = person_in(&p, &mps(1..2), "m").await;
    let alice = person_in(&p, &mps(2..3), "a").await;
    // Alice's identity in app 3 carries her unionid: it names her person.
    let oa = crate::testkit::official_account("wxoa00000000000003", Some("op"));
    let pivot = crate::testkit::official_account("wxoa00000000000004", Some("op"));
    p.assoc().link(&oa, &openid_of("a-oa"), Some(&unionid_of("ua")), &alice.person, Via::WebAuth).await.unwrap();
    // Mallory holds another openid of an app Alice holds, so the two can never be one person.
    p.assoc().link(&mp(2), &openid_of("m-2"), None, &mallory.person, Via::WebAuth).await.unwrap();
    let before = crate::testkit::dump(&*p.store).await;
    // A pass seen in Alice's browser, confirmed for Mallory: a fresh pivot identity whose
    // unionid is Alice's. Attaching it would mean merging Mallory into Alice: refused whole.
    let seen = [super::Seen { app: &pivot, openid: &openid_of("a-pivot"), unionid: Some(&unionid_of("ua")) }];
    let e = p.assoc().link_all(&mallory.person, &seen, Via::WebAuth).await.unwrap_err();
    assert!(matches!(e, Error::IdentityConflict), "{e:?}");
    let after = crate::testkit::dump(&*p.store).await;
    let added: Vec<_> =
        after.iter().filter(|i| !before.contains(i)).filter(|i| !i.s("PK").unwrap().starts_with("CONFLICT#")).collect();
    assert!(added.is_empty(), "only the conflict record is new: {added:?}");
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_logins_of_one_person_end_on_one_person() {
    let p = Ports::new();
    p.store.interleave();
    let app = mp(1);
    let (a, b) = tokio::join!(login(&p, &app, "o1", Some("u1")), login(&p, &app, "o1", Some("u1")));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.view.person, b.view.person);
    assert_eq!([a.new_person, b.new_person].iter().filter(|n| **n).count(), 1);
    assert_eq!(p.assoc().view(&a.view.person).await.unwrap().linked.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_logins_in_two_apps_with_one_unionid_end_on_one_person() {
    let p = Ports::new();
    p.store.interleave();
    let (one, two) = (mp(1), mp(2));
    let (a, b) = tokio::join!(login(&p, &one, "o1", Some("u1")), login(&p, &two, "o2", Some("u1")));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.view.person, b.view.person);
    let now = p.assoc().view(&a.view.person).await.unwrap();
    assert_eq!(now.linked.len(), 2);
    assert_eq!(stored_and_resolved(&p, &mp(1), "o1").await.1, now.person);
    assert_eq!(stored_and_resolved(&p, &mp(2), "o2").await.1, now.person);
}

#[tokio::test(start_paused = true)]
async fn readers_of_both_persons_finishing_one_stopped_merge_at_once_agree() {
    let p = Ports::new();
    let (winner, loser) = interrupted_merge(&p).await;
    p.store.interleave();
    let assoc = p.assoc();
    let (a, b) = tokio::join!(assoc.view(&loser.person), assoc.view(&winner.person));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_moved(&p, &winner, &loser, &a).await;
    assert!(conflicts(&p, &winner.person).await.is_empty(), "racing movers are no clash");
}
